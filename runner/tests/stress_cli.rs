//! `cargo xtask stress` and `compare` end to end against a fake QEMU whose
//! console is a scripted stress run per (variant, seed): exit statuses,
//! the failure report, the replay command, JSON, JUnit and SVG, and usage
//! errors caught before any boot.

mod common;

use std::process::{Command, Output};

use common::{Fake, print_record};
use stress::proto::{Record, Verdict};
use stress::trace::{CpuTrace, Ev, TraceEvent};
use stress::{Failure, FailureKind, Stats, Variant};

fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.env("RUST_BACKTRACE", "1");
    c
}

fn stats(window_hits: u64) -> Stats {
    Stats {
        forks: 20,
        faults: 400,
        swapins: 50,
        swapin_pages: 200,
        window_hits,
        ..Stats::default()
    }
}

/// How a scripted boot ends.
#[derive(Clone, Copy)]
enum Ending {
    Caught,
    Clean(u64),
    Panic,
}

/// The bash lines of one scripted stress boot.
fn boot_script(variant: Variant, seed: u64, end: Ending) -> String {
    let mut recs = vec![
        Record::Hello {
            kernel: "0.1.0".into(),
            cpus: 4,
            mem_mib: 256,
            transport: "mmio".into(),
            cmdline: format!("mode=stress variant={variant} seed={seed:#x}"),
        },
        Record::Ready {
            cpus: 4,
            boot_ns: 1_000_000,
        },
        Record::Progress {
            ms: 250,
            stats: stats(1),
        },
    ];
    let status = match end {
        Ending::Caught => {
            let ev = |t, ev, pindex| TraceEvent {
                t,
                ev,
                obj: 9,
                pindex,
                arg: 2,
            };
            recs.push(Record::Failure(Failure {
                kind: FailureKind::Repopulated,
                seed,
                variant,
                cpu: 3,
                ms: 420,
                detail: "split found pindex 4 repopulated".into(),
                traces: vec![
                    CpuTrace {
                        cpu: 1,
                        events: vec![
                            ev(100_000, Ev::PbufSleep, 6),
                            ev(300_000, Ev::AllocBehind, 4),
                        ],
                    },
                    CpuTrace {
                        cpu: 3,
                        events: vec![
                            ev(200_000, Ev::SplitBusySleep, 6),
                            ev(400_000, Ev::SplitRestart, 0),
                        ],
                    },
                ],
            }));
            recs.push(Record::Done {
                verdict: Verdict::Fail,
                ms: 421,
                stats: Some(stats(2)),
            });
            35
        }
        Ending::Clean(hits) => {
            recs.push(Record::Done {
                verdict: Verdict::Pass,
                ms: 1000,
                stats: Some(stats(hits)),
            });
            33
        }
        Ending::Panic => {
            recs.push(Record::Panic {
                cpu: 2,
                message: "assertion failed in the model".into(),
                exception: None,
            });
            37
        }
    };
    let mut s: Vec<String> = recs
        .into_iter()
        .enumerate()
        .map(|(i, r)| print_record(i as u64, r))
        .collect();
    s.push(format!("exit {status}"));
    s.join("\n")
}

/// A fake QEMU that plays `boots` by the `variant=... seed=...` of its -append.
fn fake(boots: &[(Variant, u64, Ending)]) -> Fake {
    let mut body = String::from("case \"$*\" in\n");
    for (v, seed, end) in boots {
        body.push_str(&format!(
            "*\"variant={v} seed={seed:#x} \"*)\n{}\n;;\n",
            boot_script(*v, *seed, *end)
        ));
    }
    body.push_str("*) echo \"fake qemu: no script for $*\" >&2; exit 1 ;;\nesac");
    Fake::new(&body)
}

fn run(f: &Fake, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        f.dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    runner()
        .args(["--kernel", &f.script.to_string_lossy()])
        .args(args)
        .env("PATH", path)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn stress_reports_a_caught_failure_with_its_interleaving_and_replay() {
    let f = fake(&[(Variant::Baseline, 0x5, Ending::Caught)]);
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("out/boot.json");
    let o = run(
        &f,
        &[
            "stress",
            "--seed",
            "5",
            "--accel",
            "tcg",
            "--seconds",
            "1",
            "--json",
            &json.to_string_lossy(),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    for needle in [
        "verdict: CAUGHT",
        "failure kind:      repopulated",
        "seed:              0x5",
        "caught on:         cpu 3",
        "time to detection: 420 ms",
        "split found pindex 4 repopulated",
        "getpbuf: pool empty, sleeps",
        "▶ cpu3",
        "--variant baseline --seed 0x5 --cpus 4 --seconds 1 --machine microvm --accel tcg",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
    // Events in time order: cpu1, cpu3, cpu1, cpu3.
    let order: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("    cpu") || l.starts_with("  ▶ cpu"))
        .map(|l| if l.contains("cpu1") { "1" } else { "3" })
        .collect();
    assert_eq!(order, ["1", "3", "1", "3"], "{out}");
    assert!(err.contains("seed 0x5"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(v["outcome"], "caught");
    assert_eq!(v["failure"]["kind"], "repopulated");
    assert_eq!(v["failure"]["ms"], 420);
    assert_eq!(v["exit_status"], 1);
    assert!(f.leftovers().is_empty());
}

#[test]
fn stress_exit_statuses_clean_and_harness_error() {
    let f = fake(&[
        (Variant::SwapPrealloc, 0x7, Ending::Clean(3)),
        (Variant::SplitPipwait, 0x7, Ending::Clean(0)),
        (Variant::SwapClip, 0x7, Ending::Panic),
    ]);
    let o = run(
        &f,
        &[
            "stress",
            "--variant",
            "swap-prealloc",
            "--seed",
            "7",
            "--accel",
            "tcg",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        out.contains("verdict: CLEAN") && out.contains("opened 3 times"),
        "{out}"
    );
    let o = run(
        &f,
        &[
            "stress",
            "--variant",
            "split-pipwait",
            "--seed",
            "0x7",
            "--accel",
            "tcg",
        ],
    );
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.contains("proves nothing"), "{out}");
    let o = run(
        &f,
        &[
            "stress",
            "--variant",
            "swap-clip",
            "--seed",
            "7",
            "--accel",
            "tcg",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(
        out.contains("verdict: ERROR") && out.contains("assertion failed in the model"),
        "{out}"
    );
}

fn assert_usage(args: &[&str], needle: &str) {
    // A kernel path that does not exist: reaching the boot would be exit 3.
    let o = runner()
        .args(["--kernel", "/nonexistent/kernel"])
        .args(args)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_one_line_exit_2_before_any_boot() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").expect("write");
    let under_file = file.join("x.json").to_string_lossy().into_owned();
    let a_dir = dir.path().to_string_lossy().into_owned();
    assert_usage(
        &["stress", "--variant", "nope"],
        "valid: baseline, split-skip",
    );
    assert_usage(&["stress", "--cpus", "0"], "--cpus");
    assert_usage(&["stress", "--cpus", "65"], "1..=64");
    assert_usage(&["stress", "--seconds", "0"], "--seconds");
    assert_usage(&["stress", "--seconds", "-1"], "not in (0, 86400]");
    assert_usage(&["stress", "--cpus", "-2"], "--cpus");
    assert_usage(&["stress", "--seconds", "abc"], "not a number");
    assert_usage(&["stress", "--seed", "0xzz"], "not a seed");
    assert_usage(&["stress", "--json", &under_file], "--json");
    assert_usage(&["stress", "--json", &a_dir], "is a directory");
    assert_usage(
        &["compare", "--variants", "baseline,nope"],
        "unknown variant 'nope'",
    );
    assert_usage(&["compare", "--boots", "0"], "--boots");
    assert_usage(&["compare", "--jobs", "0"], "--jobs");
    assert_usage(&["compare", "--plot", &under_file], "--plot");
    assert_usage(&["compare", "--junit", &a_dir], "--junit");
    assert_usage(
        &["bench", "stress", "--variant", "x"],
        "unknown variant 'x'",
    );
}

#[test]
fn compare_runs_the_matrix_on_shared_seeds_and_writes_every_report() {
    let f = fake(&[
        (Variant::Baseline, 1, Ending::Caught),
        (Variant::Baseline, 2, Ending::Caught),
        (Variant::SwapPrealloc, 1, Ending::Clean(4)),
        (Variant::SwapPrealloc, 2, Ending::Clean(2)),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let o = run(
        &f,
        &[
            "compare",
            "--variants",
            "baseline,swap-prealloc",
            "--boots",
            "2",
            "--seconds",
            "1",
            "--accel",
            "tcg",
            "--jobs",
            "3",
            "--json",
            &p("c.json"),
            "--plot",
            &p("c.svg"),
            "--junit",
            &p("c.xml"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("seeds 0x1..=0x2"), "{err}");
    let row = |v: &str| {
        out.lines()
            .find(|l| l.contains(&format!("│ {v} ")))
            .unwrap_or_else(|| panic!("no row for {v}:\n{out}"))
            .to_string()
    };
    assert!(
        row("baseline").contains("caught") && row("baseline").contains("repopulated 2"),
        "{out}"
    );
    assert!(
        row("swap-prealloc").contains("clean") && row("swap-prealloc").contains("6/2"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("c.json")).expect("json")).expect("parse");
    assert_eq!(v["boots"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["variants"][0]["failed_boots"], 2);
    assert_eq!(v["variants"][1]["window_hits"], 6);
    let xml = std::fs::read_to_string(p("c.xml")).expect("junit");
    assert!(
        xml.contains("tests=\"4\"") && xml.contains("failures=\"0\""),
        "{xml}"
    );
    assert!(xml.contains("baseline/0x2"), "{xml}");
    assert!(
        std::fs::read_to_string(p("c.svg"))
            .expect("svg")
            .starts_with("<svg")
    );
    assert!(f.leftovers().is_empty());
}

#[test]
fn compare_exits_3_on_infrastructure_errors_and_never_calls_them_clean() {
    let f = fake(&[
        (Variant::SwapPrealloc, 1, Ending::Clean(4)),
        (Variant::SwapPrealloc, 2, Ending::Panic),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let junit = dir.path().join("j.xml");
    let o = run(
        &f,
        &[
            "compare",
            "--variants",
            "swap-prealloc",
            "--boots",
            "2",
            "--seconds",
            "1",
            "--accel",
            "tcg",
            "--junit",
            &junit.to_string_lossy(),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    assert!(out.contains("inconclusive"), "{out}");
    assert!(
        out.contains("1 boot(s) hit an infrastructure error"),
        "{out}"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains("failures=\"1\""), "{xml}");
}
