//! `cargo xtask stress` and `compare` end to end against a fake QEMU whose
//! console is a scripted stress run per (variant, seed): exit statuses,
//! the failure report, the replay command, JSON, JUnit and SVG, and usage
//! errors caught before any boot.

mod common;

use std::process::{Command, Output};

use common::{Fake, print_record};
use stress::proto::{Record, Verdict};
use stress::scenarios::d15293;
use stress::trace::{CpuTrace, Ev, TraceEvent};
use stress::{Failure, FailureKind, ScenarioId, Stats, Variant};

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
    /// Progress, then nothing until killed (with a child process).
    Stuck,
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
                scenario: variant.scenario_id(),
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
        Ending::Stuck => -1,
    };
    let mut s: Vec<String> = recs
        .into_iter()
        .enumerate()
        .map(|(i, r)| print_record(i as u64, r))
        .collect();
    if status < 0 {
        s.push("spawn_child\nexec -a \"$0-stuck\" sleep 300".into());
    } else {
        s.push(format!("exit {status}"));
    }
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

/// The runner with the fake QEMU first on PATH and as `--kernel`.
fn with_fake(f: &Fake) -> Command {
    let path = format!(
        "{}:{}",
        f.dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = runner();
    c.args(["--kernel", &f.script.to_string_lossy()])
        .env("PATH", path);
    c
}

fn run(f: &Fake, args: &[&str]) -> Output {
    with_fake(f).args(args).output().expect("runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn stress_reports_a_caught_failure_with_its_interleaving_and_replay() {
    let f = fake(&[(d15293::BASELINE, 0x5, Ending::Caught)]);
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
            "--trace-out",
            &dir.path().join("t/trace.json").to_string_lossy(),
            "--trace-svg",
            &dir.path().join("t/lane.svg").to_string_lossy(),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let trace = std::fs::read_to_string(dir.path().join("t/trace.json")).expect("trace written");
    let names = stress::chrome_trace::lint(&serde_json::from_str(&trace).expect("trace parses"))
        .expect("a valid trace");
    assert_eq!(
        names.values().filter(|n| n.starts_with("CPU ")).count(),
        2,
        "{names:?}"
    );
    let svg = std::fs::read_to_string(dir.path().join("t/lane.svg")).expect("svg written");
    assert!(svg.contains("CPU 3 (its oracle fired)") && svg.contains("CPU 1"));
    assert!(
        out.contains("t/trace.json (Chrome trace") && out.contains("t/lane.svg"),
        "{out}"
    );
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
        (d15293::SWAP_PREALLOC, 0x7, Ending::Clean(3)),
        (d15293::SPLIT_PIPWAIT, 0x7, Ending::Clean(0)),
        (d15293::SWAP_CLIP, 0x7, Ending::Panic),
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
    // Clean, but the window never opened: INCONCLUSIVE, exit 4.
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(
        out.contains("verdict: INCONCLUSIVE") && out.contains("proves nothing"),
        "{out}"
    );
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

/// `args` fail before any boot with exactly this stderr line and exit 2.
fn assert_usage_line(args: &[&str], line: &str) {
    let o = runner()
        .args(["--kernel", "/nonexistent/kernel"])
        .args(args)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{args:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("{line}\n"),
        "{args:?}"
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
    assert_usage_line(
        &["stress", "--events", "-1"],
        "error: invalid value '-1' for '--events <N>': -1 is not a number of events (0 or more; 0 shows all) (see `cargo xtask --help`)",
    );
    assert_usage(&["stress", "--json", &under_file], "--json");
    assert_usage(&["stress", "--trace-svg", &under_file], "--trace-svg");
    assert_usage(&["compare", "--trace-dir", &under_file], "--trace-dir");
    assert_usage_line(
        &["stress", "--json", "/proc/forkswap.json"],
        "error: --json /proc/forkswap.json: cannot write in /proc: No such file or directory (os error 2)",
    );
    assert_usage_line(
        &["stress", "--cpus", "0"],
        "error: invalid value '0' for '--cpus <N>': 0 is not in 1..=64 (see `cargo xtask --help`)",
    );
    assert_usage_line(
        &["stress", "--seconds", "0"],
        "error: invalid value '0' for '--seconds <S>': 0 is not in (0, 86400] seconds (see `cargo xtask --help`)",
    );
    assert_usage_line(
        &["stress", "--variant", "nope"],
        "error: scenario d15293 has no variant 'nope'; valid: baseline, split-skip, \
         split-skip-inverted, split-restart, swap-clip, swap-prealloc, split-pipwait, \
         no-timestamp-recheck",
    );
    assert_usage(&["compare", "--seconds", "0"], "--seconds");
    assert_usage(&["compare", "--cpus", "0"], "--cpus");
    assert_usage(&["compare", "--cpus", "65"], "1..=64");
    assert_usage(&["stress", "--json", &a_dir], "is a directory");
    assert_usage(
        &["compare", "--variants", "baseline,nope"],
        "scenario d15293 has no variant 'nope'",
    );
    assert_usage(&["compare", "--boots", "0"], "--boots");
    assert_usage(&["compare", "--jobs", "0"], "--jobs");
    assert_usage(&["compare", "--plot", &under_file], "--plot");
    assert_usage(&["compare", "--junit", &a_dir], "--junit");
    assert_usage(
        &["bench", "stress", "--variant", "x"],
        "scenario d15293 has no variant 'x'",
    );
}

#[test]
fn bad_scenarios_and_variants_of_other_scenarios_are_one_line_exit_2() {
    for cmd in [&["stress"][..], &["compare"], &["bench", "stress"]] {
        let args: Vec<&str> = cmd.iter().copied().chain(["--scenario", "nope"]).collect();
        assert_usage(&args, "unknown scenario 'nope' (valid: d15293");
    }
    assert_usage_line(
        &["stress", "--scenario", "nope"],
        &format!(
            "error: invalid value 'nope' for '--scenario <S>': unknown scenario 'nope' (valid: {}) \
             (see `cargo xtask --help`)",
            ScenarioId::valid_scenarios()
        ),
    );
    // A variant of one scenario asked of another: the error names the
    // scenario it belongs to and the valid ones.
    let pairs: Vec<(ScenarioId, ScenarioId)> = ScenarioId::all()
        .flat_map(|a| {
            ScenarioId::all()
                .filter(move |b| *b != a)
                .map(move |b| (a, b))
        })
        .collect();
    for (asked, owner) in pairs {
        let v = owner.variants().last().expect("a variant");
        let want = format!(
            "scenario {asked} has no variant '{v}' (it is a variant of scenario {owner}); valid: {}",
            asked.valid_names()
        );
        assert_usage_line(
            &["stress", "--scenario", asked.name(), "--variant", v.name()],
            &format!("error: {want}"),
        );
        assert_usage(
            &[
                "compare",
                "--scenario",
                asked.name(),
                "--variants",
                v.name(),
            ],
            &want,
        );
        assert_usage(
            &[
                "bench",
                "stress",
                "--scenario",
                asked.name(),
                "--variant",
                v.name(),
            ],
            &want,
        );
    }
}

#[test]
fn compare_runs_the_matrix_on_shared_seeds_and_writes_every_report() {
    let f = fake(&[
        (d15293::BASELINE, 1, Ending::Caught),
        (d15293::BASELINE, 2, Ending::Caught),
        (d15293::SWAP_PREALLOC, 1, Ending::Clean(4)),
        (d15293::SWAP_PREALLOC, 2, Ending::Clean(2)),
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
            "--trace-dir",
            &p("traces"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("seeds 0x1..=0x2"), "{err}");
    // On the scenario's verdict CPU count, no caveat.
    assert!(!err.contains("measured on 4 or more vCPUs"), "{err}");
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
    assert_eq!(
        (v["interrupted"].clone(), v["planned"].clone()),
        (false.into(), 4.into())
    );
    assert_eq!(v["variants"][0]["failed_boots"], 2);
    assert_eq!(v["variants"][1]["window_hits"], 6);
    assert_eq!(
        (v["schema"].clone(), v["scenario"].clone()),
        (3.into(), "d15293".into())
    );
    assert_eq!(v["boots"][0]["scenario"], "d15293");
    let cases = common::junit::parse(&std::fs::read_to_string(p("c.xml")).expect("junit"));
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "d15293/baseline/0x1",
            "d15293/baseline/0x2",
            "d15293/swap-prealloc/0x1",
            "d15293/swap-prealloc/0x2"
        ]
    );
    assert!(cases.iter().all(|c| !c.failed), "{cases:?}");
    // The finding is in system-out, with its replay command.
    assert!(
        cases[0]
            .system_out
            .contains("caught repopulated on cpu 3 at 420 ms")
            && cases[0].system_out.contains("replay: cargo xtask"),
        "{cases:?}"
    );
    assert!(
        cases[2].system_out.contains("clean, 4 window hits"),
        "{cases:?}"
    );
    assert!(
        std::fs::read_to_string(p("c.svg"))
            .expect("svg")
            .starts_with("<svg")
    );
    // Trace files for the caught boots only.
    let mut traces: Vec<String> = std::fs::read_dir(p("traces"))
        .expect("trace dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    traces.sort();
    assert_eq!(
        traces,
        [
            "baseline-0x1.svg",
            "baseline-0x1.trace.json",
            "baseline-0x2.svg",
            "baseline-0x2.trace.json"
        ]
    );
    assert!(f.leftovers().is_empty());
}

#[test]
fn a_matrix_on_fewer_vcpus_than_the_verdicts_says_so() {
    let f = fake(&[(d15293::SWAP_CLIP, 1, Ending::Clean(4))]);
    let o = run(
        &f,
        &[
            "compare",
            "--variants",
            "swap-clip",
            "--boots",
            "1",
            "--seconds",
            "1",
            "--cpus",
            "2",
            "--accel",
            "tcg",
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(
        err.contains(
            "note: d15293's failing variants were measured on 4 or more vCPUs; with --cpus 2"
        ),
        "{err}"
    );
}

#[test]
fn until_confident_decides_from_the_boots_and_reports_the_claims() {
    // The reference is booted until it has REFERENCE_FAILURES failures
    // (each caught boot of the fake counts 2 window hits).
    let reference = runner::adaptive::REFERENCE_FAILURES;
    let mut boots: Vec<(Variant, u64, Ending)> = (1..=reference)
        .map(|seed| (stress::scenarios::d15293::BASELINE, seed, Ending::Caught))
        .collect();
    boots.push((
        stress::scenarios::d15293::SWAP_PREALLOC,
        1,
        Ending::Clean(5000),
    ));
    boots.push((stress::scenarios::d15293::SWAP_CLIP, 1, Ending::Clean(3)));
    boots.push((stress::scenarios::d15293::SWAP_CLIP, 2, Ending::Caught));
    let f = fake(&boots);
    let dir = tempfile::tempdir().expect("dir");
    let p = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let o = run(
        &f,
        &[
            "compare",
            "--until-confident",
            "--variants",
            "swap-prealloc,swap-clip",
            "--seconds",
            "1",
            "--accel",
            "tcg",
            "--jobs",
            "1",
            "--json",
            &p("c.json"),
            "--junit",
            &p("c.xml"),
            "--plot",
            &p("c.svg"),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(err.contains("adding baseline"), "{err}");
    assert!(
        out.contains(&format!(
            "baseline: caught: {reference} failure(s) in {} window hits",
            2 * reference
        )),
        "{out}"
    );
    assert!(
        out.contains("swap-prealloc: clean: 0 failures in 5,000 window hits")
            && out.contains("≥ 100× below baseline's 50.0%"),
        "{out}"
    );
    assert!(out.contains("swap-clip: caught: 1 failure(s)"), "{out}");
    let v = report_json(&dir.path().join("c.json"));
    assert_eq!(v["boots_per_variant"], 0);
    assert_eq!(
        v["boots"].as_array().map(Vec::len),
        Some(reference as usize + 3)
    );
    let d = &v["confident"]["decisions"];
    assert_eq!(
        (d[0]["variant"].clone(), d[0]["decision"].clone()),
        ("baseline".into(), "caught".into())
    );
    assert_eq!(d[1]["decision"], "clean");
    assert!(d[1]["hits"].as_u64() >= d[1]["hits_needed"].as_u64());
    assert_eq!(d[2]["decision"], "caught");
    assert_eq!(v["variants"][1]["verdict"], "clean");
    let cases = common::junit::parse(&std::fs::read_to_string(p("c.xml")).expect("junit"));
    let decision = cases
        .iter()
        .find(|c| c.name == "decision/swap-prealloc")
        .expect("decision case");
    assert!(!decision.failed && decision.system_out.contains("clean: 0 failures"));
    let svg = std::fs::read_to_string(p("c.svg")).expect("svg");
    assert!(
        svg.contains("decided clean") && svg.contains("decided caught"),
        "no decision label: {svg}"
    );
    assert!(f.leftovers().is_empty());
    // --factor without --until-confident is a usage error.
    assert_usage(&["compare", "--factor", "10"], "--until-confident");
    // A verdict on fewer vCPUs than the scenario's were measured on is
    // refused before anything boots.
    assert_usage(
        &["compare", "--until-confident", "--cpus", "2"],
        "d15293 is decided on 4 or more vCPUs",
    );
}

#[test]
fn compare_exits_3_on_infrastructure_errors_and_never_calls_them_clean() {
    let f = fake(&[
        (d15293::SWAP_PREALLOC, 1, Ending::Clean(4)),
        (d15293::SWAP_PREALLOC, 2, Ending::Panic),
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
    let cases = common::junit::parse(&std::fs::read_to_string(&junit).expect("junit"));
    assert_eq!(cases.len(), 2);
    assert!(
        !cases[0].failed && cases[0].system_out.contains("clean"),
        "{cases:?}"
    );
    // The infrastructure error is a failed case that says what happened.
    assert!(cases[1].failed, "{cases:?}");
    assert_eq!(cases[1].name, "d15293/swap-prealloc/0x2");
    assert!(cases[1].message.contains("ERROR Panic"), "{cases:?}");
}

/// The JSON of a report with the wall times (which differ from run to run)
/// taken out of its boots.
fn report_json(path: &std::path::Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("report")).expect("json");
    for b in v["boots"].as_array_mut().expect("boots") {
        b["elapsed_ms"] = 0.into();
    }
    v
}

#[test]
fn shards_merge_into_exactly_the_single_run() {
    let variants = [d15293::BASELINE, d15293::SWAP_CLIP, d15293::SWAP_PREALLOC];
    let mut boots = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        for seed in 1..=3u64 {
            let end = match (i as u64 + seed) % 3 {
                0 => Ending::Caught,
                1 => Ending::Clean(seed),
                _ => Ending::Panic,
            };
            boots.push((*v, seed, end));
        }
    }
    let f = fake(&boots);
    let dir = tempfile::tempdir().expect("dir");
    let p = |n: &str| dir.path().join(n);
    let compare = |seconds: &str, extra: &[&str], json: &str| {
        let mut args = vec![
            "compare",
            "--variants",
            "baseline,swap-clip,swap-prealloc",
            "--boots",
            "3",
            "--seconds",
            seconds,
            "--accel",
            "tcg",
            "--jobs",
            "2",
        ];
        args.extend(extra);
        let json = p(json).to_string_lossy().into_owned();
        args.extend(["--json", &json]);
        let o = run(&f, &args);
        // Panics are infrastructure errors: exit 3 once one ran.
        assert!(matches!(o.status.code(), Some(0 | 3)), "{:?}", text(&o));
        o
    };
    compare("1", &[], "all.json");
    for (i, s) in ["1/3", "2/3", "3/3"].iter().enumerate() {
        let o = compare("1", &["--shard", s], &format!("s{}.json", i + 1));
        assert!(
            text(&o).1.contains(&format!("shard {s}: 3 of them")),
            "{:?}",
            text(&o)
        );
    }
    let s = |n: &str| p(n).to_string_lossy().into_owned();
    let merged = s("merged.json");
    let o = runner()
        .args([
            "merge",
            &s("s3.json"),
            &s("s1.json"),
            &s("s2.json"),
            "--json",
            &merged,
        ])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let (all, m) = (report_json(&p("all.json")), report_json(&p("merged.json")));
    assert_eq!(m["boots"], all["boots"]);
    assert_eq!(m["variants"], all["variants"]);
    for k in [
        "cpus",
        "seconds",
        "seed_base",
        "machine",
        "boots_per_variant",
        "kernel_sha256",
    ] {
        assert_eq!(m[k], all[k], "{k}");
    }
    assert_eq!(m["planned"], 9);
    assert_eq!(m["shard"], serde_json::Value::Null);
    assert_eq!(m["merged_from"].as_array().map(Vec::len), Some(3));
    // Refused with one line and exit 2: overlap, a hole, another plan.
    compare("2", &["--shard", "1/3"], "other.json");
    for (args, needle) in [
        (
            vec![s("s1.json"), s("s1.json"), s("s2.json"), s("s3.json")],
            "overlap",
        ),
        (vec![s("s1.json"), s("s3.json")], "shard(s) 2/3 missing"),
        (
            vec![s("other.json"), s("s2.json"), s("s3.json")],
            "not shards of one plan: seconds",
        ),
        (
            vec![s("s1.json"), p("nope.json").to_string_lossy().into_owned()],
            "cannot read",
        ),
    ] {
        let o = runner()
            .arg("merge")
            .args(&args)
            .args(["--json", &s("bad.json")])
            .output()
            .expect("runs");
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{needle}: {err}"
        );
        assert!(!p("bad.json").exists());
    }
    // Hostile fields: refused with one line and exit 2, never a panic or
    // a plan of billions of boots.
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("s1.json")).expect("s1")).expect("json");
    for (field, value, needle) in [
        (
            "shard",
            serde_json::json!({"index": 0, "count": 3}),
            "shard 0/3 is not a shard",
        ),
        (
            "shard",
            serde_json::json!({"index": 1, "count": 0}),
            "shard 1/0 is not a shard",
        ),
        (
            "boots_per_variant",
            serde_json::json!(4_000_000_000u32),
            "boots_per_variant 4000000000",
        ),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        std::fs::write(p("hostile.json"), bad.to_string()).expect("write");
        let o = runner()
            .args(["merge", &s("hostile.json"), "--json", &s("bad.json")])
            .output()
            .expect("runs");
        let err = text(&o).1;
        assert_eq!(o.status.code(), Some(2), "{field}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert_usage(&["compare", "--shard", "4/3"], "--shard");
    assert_usage(&["compare", "--shard", "0/3"], "--shard");
    assert!(f.leftovers().is_empty());
}

#[test]
fn sigint_mid_matrix_keeps_finished_boots_and_leaves_nothing() {
    use std::io::{BufRead, BufReader};
    let mut boots = Vec::new();
    for v in [d15293::BASELINE, d15293::SWAP_PREALLOC] {
        boots.push((v, 1, Ending::Caught));
        boots.push((v, 2, Ending::Clean(3)));
        boots.push((v, 3, Ending::Stuck));
        boots.push((v, 4, Ending::Stuck));
    }
    let f = fake(&boots);
    let dir = tempfile::tempdir().expect("dir");
    let tmp = tempfile::tempdir().expect("tmp");
    let (json, junit) = (dir.path().join("c.json"), dir.path().join("c.xml"));
    let mut child = with_fake(&f)
        .args([
            "compare",
            "--variants",
            "baseline,swap-prealloc",
            "--boots",
            "4",
            "--seconds",
            "1",
            "--accel",
            "tcg",
            "--jobs",
            "2",
            "--json",
            &json.to_string_lossy(),
            "--junit",
            &junit.to_string_lossy(),
        ])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read stderr on a thread until the end (a closed pipe would make the
    // runner's next eprintln! fail); hear about the 4th finished boot.
    let err = BufReader::new(child.stderr.take().expect("stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for l in err.lines().map_while(Result::ok) {
            if l.starts_with("[4/8]") {
                let _ = tx.send(());
            }
            all.push(l);
        }
        all
    });
    let seen = rx.recv_timeout(std::time::Duration::from_secs(30));
    assert!(seen.is_ok(), "the 4th boot never finished");
    // Two stuck boots are running now (--jobs 2), each with a child and a disk.
    let t = std::time::Instant::now();
    while f.leftovers().len() < 4 {
        assert!(
            t.elapsed().as_secs() < 20,
            "stuck boots never started: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 2);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("signal");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = reader.join().expect("reader").join("\n");
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("killed 2 QEMU process group(s), removed 2 temp dir(s)"),
        "{stderr}"
    );
    assert!(
        stdout.contains("INTERRUPTED by SIGINT: 4 of 8 boots finished"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["signal"], "SIGINT");
    assert_eq!(v["planned"], 8);
    let seeds: Vec<&str> = v["boots"]
        .as_array()
        .expect("boots")
        .iter()
        .map(|b| b["seed"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(seeds, ["0x1", "0x1", "0x2", "0x2"]);
    assert_eq!(v["variants"][0]["failed_boots"], 1);
    assert_eq!(v["variants"][1]["boots"], 2);
    let cases = common::junit::parse(&std::fs::read_to_string(&junit).expect("junit"));
    assert_eq!(cases.len(), 5, "{cases:?}");
    let last = &cases[4];
    assert_eq!(last.name, "compare/interrupted");
    assert!(
        last.failed && last.message.contains("4 of 8 boots finished"),
        "{last:?}"
    );
    // No temp file next to the JSON, no QEMU, no disk.
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 2);
    assert_eq!(f.leftovers(), Vec::<u32>::new(), "QEMU left behind");
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        0,
        "disk left behind"
    );
}

#[test]
fn sigterm_during_stress_writes_the_interrupted_document() {
    let f = fake(&[(d15293::SWAP_CLIP, 9, Ending::Stuck)]);
    let dir = tempfile::tempdir().expect("dir");
    let tmp = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("s.json");
    let child = with_fake(&f)
        .args([
            "stress",
            "--variant",
            "swap-clip",
            "--seed",
            "9",
            "--accel",
            "tcg",
        ])
        .args(["--json", &json.to_string_lossy()])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let t = std::time::Instant::now();
    while f.leftovers().len() < 2 {
        assert!(t.elapsed().as_secs() < 20, "the stuck boot never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(143), "{stdout}");
    assert!(stdout.contains("INTERRUPTED by SIGTERM"), "{stdout}");
    assert!(
        stdout.contains("--variant swap-clip --seed 0x9"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert_eq!(
        (v["interrupted"].clone(), v["signal"].clone()),
        (true.into(), "SIGTERM".into())
    );
    assert_eq!(v["stats"]["window_hits"], 1);
    assert_eq!(f.leftovers(), Vec::<u32>::new());
    assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 0);
}

#[test]
fn infrastructure_errors_exit_3_on_one_line() {
    let f = fake(&[(d15293::BASELINE, 1, Ending::Clean(1))]);
    let kernel = f.script.to_string_lossy().into_owned();
    for (args, env, needle) in [
        (
            vec!["--kernel", "/nope", "stress"],
            None,
            "the kernel image /nope does not exist",
        ),
        (
            vec!["--kernel", "/nope", "compare", "--boots", "1"],
            None,
            "the kernel image /nope does not exist",
        ),
        (
            vec!["--kernel", "/tmp", "stress"],
            None,
            "--kernel /tmp: is a directory, not a kernel image",
        ),
        (
            vec!["--kernel", &kernel, "stress", "--accel", "tcg"],
            Some("/nonexistent/qemu-system-x86_64"),
            "FORKSWAP_QEMU=/nonexistent/qemu-system-x86_64: no such executable",
        ),
        (
            vec!["--kernel", &kernel, "compare", "--accel", "tcg"],
            Some("/nonexistent/qemu"),
            "FORKSWAP_QEMU=/nonexistent/qemu: no such executable",
        ),
    ] {
        let mut c = runner();
        c.args(&args);
        if let Some(q) = env {
            c.env("FORKSWAP_QEMU", q);
        }
        let o = c.output().expect("runs");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
    }
    // FORKSWAP_QEMU names the binary: the fake one runs the boot.
    let o = runner()
        .args([
            "--kernel", &kernel, "stress", "--seed", "1", "--accel", "tcg",
        ])
        .env("FORKSWAP_QEMU", &f.script)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

#[test]
fn a_matrix_killed_by_sigkill_keeps_its_checkpoint() {
    let mut boots = Vec::new();
    for v in [d15293::BASELINE, d15293::SWAP_PREALLOC] {
        boots.push((v, 1, Ending::Clean(2)));
        boots.push((v, 2, Ending::Stuck));
    }
    let f = fake(&boots);
    let dir = tempfile::tempdir().expect("dir");
    let tmp = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("c.json");
    let mut child = with_fake(&f)
        .args([
            "compare",
            "--variants",
            "baseline,swap-prealloc",
            "--boots",
            "2",
        ])
        .args(["--seconds", "1", "--accel", "tcg", "--jobs", "1", "--json"])
        .arg(&json)
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Boots 1 and 2 finish, boot 3 hangs: its QEMU (and child) run.
    let t = std::time::Instant::now();
    while f.leftovers().len() < 2 {
        assert!(t.elapsed().as_secs() < 20, "the stuck boot never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    // Nothing can clean up after SIGKILL: end the orphaned fake QEMU here.
    for pid in f.leftovers() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("checkpoint")).expect("json");
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["signal"], serde_json::Value::Null);
    assert_eq!(v["planned"], 4);
    assert_eq!(v["boots"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["variants"][1]["window_hits"], 2);
    assert!(f.leftovers().is_empty());
}

fn read_json(p: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).expect("written")).expect("json")
}

/// Runs `args` with stdout and stderr as given; its exit code.
fn run_with(f: &Fake, args: &[&str], stdout: std::process::Stdio, close_err: bool) -> Option<i32> {
    let mut child = with_fake(f)
        .args(args)
        .stdout(stdout)
        .stderr(if close_err {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .spawn()
        .expect("spawn");
    // A closed stderr pipe: the reader is gone before the runner writes.
    drop(child.stderr.take());
    child.wait().expect("wait").code()
}

#[test]
fn a_full_or_closed_terminal_never_loses_the_results() {
    use std::process::Stdio;
    let f = fake(&[
        (d15293::SWAP_PREALLOC, 1, Ending::Clean(3)),
        (d15293::SWAP_PREALLOC, 2, Ending::Caught),
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let full = || Stdio::from(std::fs::File::create("/dev/full").expect("/dev/full"));
    let json = dir.path().join("s.json");
    let j = json.to_string_lossy().into_owned();
    let stress = [
        "stress",
        "--variant",
        "swap-prealloc",
        "--seed",
        "2",
        "--seconds",
        "1",
        "--accel",
        "tcg",
        "--json",
        &j,
    ];
    // stdout on a full device: no panic; the JSON holds the verdict; exit 3
    // with one line on stderr.
    let o = with_fake(&f)
        .args(stress)
        .stdout(full())
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("error: cannot write the report to standard output: No space left on device"),
        "{err}"
    );
    assert_eq!(read_json(&json)["outcome"], "caught");
    // A closed stderr pipe (the live status line): the verdict's own status.
    std::fs::remove_file(&json).expect("rm");
    assert_eq!(run_with(&f, &stress, Stdio::null(), true), Some(1));
    assert_eq!(read_json(&json)["outcome"], "caught");
    // compare: the final report, not a checkpoint, whatever stdout does.
    let cj = dir.path().join("c.json");
    let c = cj.to_string_lossy().into_owned();
    let compare = [
        "compare",
        "--variants",
        "swap-prealloc",
        "--boots",
        "2",
        "--seconds",
        "1",
        "--accel",
        "tcg",
        "--jobs",
        "1",
        "--json",
        &c,
    ];
    let whole = |code: Option<i32>, want: i32, what: &str| {
        assert_eq!(code, Some(want), "{what}");
        let v = report_json(&cj);
        assert_eq!(v["interrupted"], false, "{what}: {v}");
        assert_eq!(v["boots"].as_array().map(Vec::len), Some(2), "{what}");
        std::fs::remove_file(&cj).expect("rm");
    };
    whole(run_with(&f, &compare, full(), false), 3, "> /dev/full");
    whole(
        run_with(&f, &compare, Stdio::null(), true),
        0,
        "closed stderr",
    );
    // A closed stdout (`| head` gone): 141, as SIGPIPE would, after the JSON.
    let mut child = with_fake(&f)
        .args(compare)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    whole(child.wait().expect("wait").code(), 141, "closed stdout");
    assert!(f.leftovers().is_empty());
}

#[test]
fn run_on_a_full_terminal_says_so_in_one_line_and_exits_3() {
    use std::process::Stdio;
    let f = fake(&[(d15293::SWAP_PREALLOC, 2, Ending::Clean(3))]);
    let args = [
        "run",
        "--accel",
        "tcg",
        "--",
        "mode=stress variant=swap-prealloc seed=0x2 duration_ms=1000",
    ];
    // The same boot to a pipe: Pass, exit 0, the console and the verdict shown.
    let o = run(&f, &args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("Pass"), "{out}");
    // To a full device: no panic, exit 3, one line saying why.
    let full = Stdio::from(std::fs::File::create("/dev/full").expect("/dev/full"));
    let o = with_fake(&f)
        .args(args)
        .stdout(full)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("error: cannot write the report to standard output"))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    assert!(said[0].contains("No space left on device"), "{err}");
    assert!(f.leftovers().is_empty());
}
