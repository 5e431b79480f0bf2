//! The JSON reports and how output files are written: `compare --json`
//! ([`CompareReport`]: every boot and the per-variant summaries),
//! `stress --json` (one [`BootResult`]); files are written atomically
//! (a temp file in the same directory, then rename), and every output path
//! is checked before the first boot so that a typo costs no boot time.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::matrix::Shard;
use crate::qemu::{Accel, Machine};
use crate::seed;
use crate::stress_result::BootResult;
use crate::summary::VariantSummary;

/// Version of the report layout (2: kernel hash, shard, interruption;
/// 3: the scenario of the report and of every boot).
pub const SCHEMA: u32 = 3;

/// What `compare --json` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    pub schema: u32,
    /// The command that made it.
    pub command: String,
    /// The race whose variants were compared (absent before schema 3: d15293).
    #[serde(default)]
    pub scenario: stress::ScenarioId,
    pub machine: Machine,
    pub accel: Accel,
    /// Why that accelerator.
    pub accel_why: String,
    pub cpus: u32,
    pub seconds: f64,
    pub boots_per_variant: u32,
    #[serde(with = "seed::serde_hex")]
    pub seed_base: u64,
    pub jobs: usize,
    /// Wall time of the whole matrix.
    pub wall_ms: u64,
    /// One summary per variant, in the order asked (over the boots that
    /// finished).
    pub variants: Vec<VariantSummary>,
    /// Every boot that finished, in plan order.
    pub boots: Vec<BootResult>,
    /// SHA-256 of the kernel image booted.
    #[serde(default)]
    pub kernel_sha256: String,
    /// The slice of the plan this run covered (`--shard I/N`); `null`: all.
    #[serde(default)]
    pub shard: Option<Shard>,
    /// Boots this run was to run (its shard of the plan, or all of it).
    #[serde(default)]
    pub planned: usize,
    /// Not every planned boot finished: `boots` holds those that did and
    /// `variants` summarizes them. With `signal`, SIGINT/SIGTERM stopped
    /// the run; without, this is the checkpoint `compare` writes after
    /// every boot (the run is going on, or died without a chance to say).
    #[serde(default)]
    pub interrupted: bool,
    /// The signal that stopped it (`SIGINT`, `SIGTERM`).
    #[serde(default)]
    pub signal: Option<String>,
    /// For `cargo xtask merge`: the shard reports it combined.
    #[serde(default)]
    pub merged_from: Vec<String>,
    /// `compare --until-confident`: every variant's decision, computed from
    /// `boots` (then `boots_per_variant` is 0: there is no fixed plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confident: Option<crate::adaptive::Confident>,
}

/// What `stress --json` writes when SIGINT/SIGTERM stopped the boot: no
/// verdict, the counters of the last `Progress` record, and how to run it
/// again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StressInterrupted {
    pub schema: u32,
    /// Always true: tells this document from a boot result.
    pub interrupted: bool,
    /// `SIGINT` or `SIGTERM`.
    pub signal: String,
    /// The race (absent before schema 3: d15293).
    #[serde(default)]
    pub scenario: stress::ScenarioId,
    pub variant: stress::Variant,
    #[serde(with = "seed::serde_hex")]
    pub seed: u64,
    pub cpus: u32,
    pub seconds: f64,
    pub machine: Machine,
    pub accel: Accel,
    /// The last counters the kernel reported before the interrupt.
    pub stats: Option<stress::Stats>,
    /// The stress run's time at those counters (ms).
    pub run_ms: Option<u64>,
    /// QEMU spawn to the interrupt.
    pub elapsed_ms: u64,
    pub replay: String,
}

/// Serializes `value` (pretty) and writes it to `path` atomically.
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("cannot serialize the report")?;
    text.push('\n');
    write_file_atomic(path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temp file in the same directory,
/// readable by all (`0644`, as a plain write would leave it; the temp
/// file itself starts private).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent(path);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".forkswap-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot rename the temp file to {}", path.display()))?;
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Checks that `path` can be written (its directory is made when missing):
/// a usage error naming `flag` otherwise.
pub fn ensure_writable(flag: &str, path: &Path) -> Result<(), Error> {
    let bad = |why: String| Error::usage(format!("{flag} {}: {why}", path.display()));
    if path.is_dir() {
        return Err(bad("is a directory".into()));
    }
    if path.file_name().is_none() {
        return Err(bad("names no file".into()));
    }
    let dir = parent(path);
    std::fs::create_dir_all(dir)
        .map_err(|e| bad(format!("cannot create {}: {}", dir.display(), os_error(&e))))?;
    tempfile::Builder::new()
        .prefix(".forkswap-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            bad(format!(
                "cannot write in {}: {}",
                dir.display(),
                os_error(&e)
            ))
        })
}

/// An I/O error in the OS's words, without the temp file's path that
/// `tempfile` appends.
fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.split_once(" at path ") {
        Some((os, _)) => os.to_string(),
        None => s,
    }
}

/// Reads a compare report back.
pub fn read_compare(path: &Path) -> anyhow::Result<CompareReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a compare report", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress_result::{FailureInfo, HangBy, HangInfo, Outcome};
    use crate::summary::summarize;
    use crate::testkit::result;
    use stress::FailureKind;
    use stress::proto::CpuWait;
    use stress::scenarios::d15293;

    fn report() -> CompareReport {
        let mut caught = result(d15293::BASELINE, Outcome::Caught, 2);
        caught.seed = u64::MAX;
        caught.failure = Some(FailureInfo {
            kind: FailureKind::Repopulated,
            cpu: 3,
            ms: 812,
            detail: "pindex 3 \"moved\" twice".into(),
        });
        let mut hang = result(d15293::SPLIT_PIPWAIT, Outcome::Hang, 0);
        hang.hang = Some(HangInfo {
            ms: 3000,
            waits: vec![CpuWait {
                cpu: 0,
                wait: "pip obj 3".into(),
                stalled_ms: 3000,
            }],
            by: HangBy::Watchdog,
        });
        let boots = vec![
            caught,
            result(d15293::SWAP_PREALLOC, Outcome::Clean, 4),
            result(d15293::SWAP_PREALLOC, Outcome::Infra, 0),
            hang,
        ];
        CompareReport {
            schema: SCHEMA,
            command: "cargo xtask compare".into(),
            scenario: stress::ScenarioId::DEFAULT,
            machine: Machine::Microvm,
            accel: Accel::Tcg,
            accel_why: "--accel tcg".into(),
            cpus: 4,
            seconds: 5.0,
            boots_per_variant: 1,
            seed_base: 1,
            jobs: 2,
            wall_ms: 12_345,
            variants: [
                d15293::BASELINE,
                d15293::SWAP_PREALLOC,
                d15293::SPLIT_PIPWAIT,
            ]
            .iter()
            .map(|v| summarize(*v, &boots))
            .collect(),
            boots,
            kernel_sha256: "ab".repeat(32),
            shard: Some(Shard { index: 1, count: 2 }),
            planned: 4,
            interrupted: false,
            signal: None,
            merged_from: Vec::new(),
            confident: None,
        }
    }

    #[test]
    fn report_round_trips_through_an_atomic_write() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub/compare.json");
        ensure_writable("--json", &path).expect("writable");
        let r = report();
        write_atomic(&path, &r).expect("write");
        let back = read_compare(&path).expect("read");
        assert_eq!(back, r);
        // Written again over the old file; no temp file left behind.
        write_atomic(&path, &r).expect("rewrite");
        let names: Vec<String> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["compare.json".to_string()]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "a report must be readable by all");
    }

    #[test]
    fn json_uses_the_documented_names() {
        let v: serde_json::Value = serde_json::to_value(report()).expect("json");
        let b = &v["boots"][0];
        assert_eq!(b["seed"], "0xffffffffffffffff");
        assert_eq!(b["variant"], "baseline");
        assert_eq!(b["outcome"], "caught");
        assert_eq!(b["machine"], "microvm");
        assert_eq!(b["failure"]["kind"], "repopulated");
        assert_eq!(b["hang"], serde_json::Value::Null);
        assert_eq!(v["boots"][3]["hang"]["by"], "watchdog");
        let s = &v["variants"][0];
        for key in [
            "variant",
            "boots",
            "failed_boots",
            "hangs",
            "window_hits",
            "failure_kinds",
        ] {
            assert!(!s[key].is_null(), "summary lacks {key}: {s}");
        }
        assert_eq!(s["failure_kinds"]["repopulated"], 1);
        assert_eq!(v["variants"][1]["verdict"], "inconclusive");
        assert_eq!(v["variants"][2]["verdict"], "hangs");
        assert_eq!(v["seed_base"], "0x1");
    }

    #[test]
    fn unwritable_paths_are_usage_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let e = ensure_writable("--json", dir.path()).expect_err("a directory");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().starts_with("--json "), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("write");
        let e =
            ensure_writable("--plot", &file.join("under-a-file.svg")).expect_err("under a file");
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--plot"), "{e}");
    }
}
