//! `compare --shard auto` end to end against a fake QEMU: the shard comes
//! from a Slurm array task's or a Kubernetes Indexed Job's environment, the
//! shards merge into the single run, and a missing or inconsistent
//! environment is one line and exit 2 before any boot.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use stress::scenarios::d15293;

use common::{Fake, print_record};
use stress::proto::{Record, Verdict};
use stress::{Stats, Variant};

const VARIANTS: [Variant; 2] = [d15293::BASELINE, d15293::SWAP_PREALLOC];
const BOOTS: u64 = 3;

/// Every variable `--shard auto` reads: removed from the runner's
/// environment so that the test's own environment (e.g. a CI job that is
/// itself an array task) does not leak in.
const ENGINE_VARS: [&str; 7] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
    "FORKSWAP_SHARDS",
];

/// A fake QEMU that plays a clean stress boot for every (variant, seed) of
/// the plan, with window hits that tell the boots apart; every start is
/// logged to `starts` in its dir.
fn fake() -> Fake {
    let mut body = String::from("echo start >> \"$(dirname \"$0\")/starts\"\ncase \"$*\" in\n");
    for (i, v) in VARIANTS.iter().enumerate() {
        for seed in 1..=BOOTS {
            let recs = [
                Record::Hello {
                    kernel: "0.1.0".into(),
                    cpus: 2,
                    mem_mib: 256,
                    transport: "mmio".into(),
                    cmdline: format!("mode=stress variant={v} seed={seed:#x}"),
                },
                Record::Ready {
                    cpus: 2,
                    boot_ns: 1_000_000,
                },
                Record::Done {
                    verdict: Verdict::Pass,
                    ms: 500,
                    stats: Some(Stats {
                        forks: 10,
                        faults: 100,
                        window_hits: seed * 10 + i as u64,
                        ..Stats::default()
                    }),
                },
            ];
            let lines: Vec<String> = recs
                .into_iter()
                .enumerate()
                .map(|(n, r)| print_record(n as u64, r))
                .collect();
            body.push_str(&format!(
                "*\"variant={v} seed={seed:#x} \"*)\n{}\nexit 33\n;;\n",
                lines.join("\n")
            ));
        }
    }
    body.push_str("*) echo \"fake qemu: no script for $*\" >&2; exit 1 ;;\nesac");
    Fake::new(&body)
}

/// `compare` of the plan with the fake QEMU, the engine variables `env`
/// and the extra arguments, writing `json`.
fn compare(f: &Fake, env: &[(&str, &str)], extra: &[&str], json: &Path) -> Output {
    let path = format!(
        "{}:{}",
        f.dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    for k in ENGINE_VARS {
        c.env_remove(k);
    }
    c.env("PATH", path)
        .envs(env.iter().copied())
        .args(["--kernel", &f.script.to_string_lossy()])
        .args([
            "compare",
            "--variants",
            "baseline,swap-prealloc",
            "--boots",
            "3",
            "--seconds",
            "0.5",
            "--cpus",
            "2",
            "--accel",
            "tcg",
            "--jobs",
            "2",
            "--json",
            &json.to_string_lossy(),
        ])
        .args(extra);
    c.output().expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read(p: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p).expect("report")).expect("json");
    for b in v["boots"].as_array_mut().expect("boots") {
        b["elapsed_ms"] = 0.into();
    }
    v
}

fn starts(f: &Fake) -> usize {
    std::fs::read_to_string(f.dir.path().join("starts")).map_or(0, |s| s.lines().count())
}

#[test]
fn slurm_array_tasks_run_their_shards_and_merge_into_the_single_run() {
    let f = fake();
    let dir = tempfile::tempdir().expect("dir");
    let p = |n: &str| dir.path().join(n);
    let o = compare(&f, &[], &[], &p("all.json"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // An array submitted as --array=0-2 (MIN/MAX) and one as 1-3 (COUNT)
    // split the plan the same way.
    for (id, vars) in [
        (
            "0",
            [("SLURM_ARRAY_TASK_MAX", "2"), ("SLURM_ARRAY_TASK_MIN", "0")],
        ),
        (
            "1",
            [
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "0"),
            ],
        ),
        (
            "3",
            [
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
            ],
        ),
    ] {
        let mut env = vars.to_vec();
        env.push(("SLURM_ARRAY_TASK_ID", id));
        let o = compare(&f, &env, &["--shard", "auto"], &p(&format!("t{id}.json")));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let shard_of = |n: &str| read(&p(n))["shard"].clone();
    assert_eq!(
        shard_of("t0.json"),
        serde_json::json!({"index": 1, "count": 3})
    );
    assert_eq!(
        shard_of("t1.json"),
        serde_json::json!({"index": 2, "count": 3})
    );
    assert_eq!(
        shard_of("t3.json"),
        serde_json::json!({"index": 3, "count": 3})
    );
    assert!(
        stderr(&compare(
            &f,
            &[
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3")
            ],
            &["--shard", "auto"],
            &p("again.json")
        ))
        .contains("shard 1/3: 2 of them")
    );
    let s = |n: &str| p(n).to_string_lossy().into_owned();
    let o = Command::new(env!("CARGO_BIN_EXE_runner"))
        .args([
            "merge",
            &s("t0.json"),
            &s("t1.json"),
            &s("t3.json"),
            "--json",
            &s("merged.json"),
        ])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (all, m) = (read(&p("all.json")), read(&p("merged.json")));
    assert_eq!(m["boots"], all["boots"]);
    assert_eq!(m["variants"], all["variants"]);
    assert_eq!(m["planned"], 6);
    assert!(f.leftovers().is_empty());
}

#[test]
fn indexed_job_pods_take_the_count_from_shards_or_the_variable() {
    let f = fake();
    let dir = tempfile::tempdir().expect("dir");
    let p = |n: &str| dir.path().join(n);
    let o = compare(
        &f,
        &[("JOB_COMPLETION_INDEX", "0")],
        &["--shard", "auto", "--shards", "2"],
        &p("k0.json"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = compare(
        &f,
        &[("JOB_COMPLETION_INDEX", "1"), ("FORKSWAP_SHARDS", "2")],
        &["--shard", "auto"],
        &p("k1.json"),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (a, b) = (read(&p("k0.json")), read(&p("k1.json")));
    assert_eq!(a["shard"], serde_json::json!({"index": 1, "count": 2}));
    assert_eq!(b["shard"], serde_json::json!({"index": 2, "count": 2}));
    // Shard 1/2 holds plan cells 0, 2, 4: seed 1, 2, 3 of baseline.
    let seeds = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["boots"]
            .as_array()
            .expect("boots")
            .iter()
            .map(|b| {
                (
                    b["variant"].as_str().expect("variant").to_string(),
                    b["seed"].as_str().expect("seed").to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        seeds(&a),
        ["0x1", "0x2", "0x3"].map(|s| ("baseline".to_string(), s.to_string()))
    );
    assert_eq!(
        seeds(&b),
        ["0x1", "0x2", "0x3"].map(|s| ("swap-prealloc".to_string(), s.to_string()))
    );
}

#[test]
fn a_missing_or_inconsistent_engine_environment_is_one_line_and_exit_2() {
    let f = fake();
    let dir = tempfile::tempdir().expect("dir");
    let json = dir.path().join("c.json");
    for (env, extra, needle) in [
        (
            vec![],
            vec!["--shard", "auto"],
            "neither SLURM_ARRAY_TASK_ID",
        ),
        (
            vec![
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_MAX", "3"),
            ],
            vec!["--shard", "auto"],
            "SLURM_ARRAY_TASK_ID=4 is not one of the 3 task(s)",
        ),
        (
            vec![("SLURM_ARRAY_TASK_ID", "2")],
            vec!["--shard", "auto"],
            "SLURM_ARRAY_TASK_MIN is not",
        ),
        (
            vec![
                ("SLURM_ARRAY_TASK_ID", "1"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
            vec!["--shard", "auto", "--shards", "2"],
            "--shards 2 but the job array has 3",
        ),
        (
            vec![("JOB_COMPLETION_INDEX", "0")],
            vec!["--shard", "auto"],
            "pass --shards N or set FORKSWAP_SHARDS",
        ),
        (
            vec![("JOB_COMPLETION_INDEX", "2"), ("FORKSWAP_SHARDS", "2")],
            vec!["--shard", "auto"],
            "JOB_COMPLETION_INDEX=2 but FORKSWAP_SHARDS is 2",
        ),
        (
            vec![],
            vec!["--shard", "1/2", "--shards", "2"],
            "--shards N goes with --shard auto only",
        ),
    ] {
        let o = compare(&f, &env, &extra, &json);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{env:?} {extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{needle}: {err}"
        );
    }
    assert_eq!(starts(&f), 0, "a QEMU started despite the usage error");
    assert!(!json.exists());
    // A bad value of the flag itself is clap's one line.
    let o = compare(&f, &[], &["--shard", "automatic"], &json);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("or auto"), "{}", stderr(&o));
}
