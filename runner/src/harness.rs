//! The boot suite's checks of the harness itself, with real QEMU boots:
//! a hundred short boots in a row leave no QEMU process and no temp disk
//! behind, and a `compare` interrupted by SIGINT mid-matrix keeps its
//! finished boots, writes its JSON marked interrupted, exits 130 and leaves
//! nothing behind either.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::boot::{self, BootSpec};
use crate::qemu::Accel;
use crate::reaper;
use crate::report::CaseResult;
use crate::verdict::Verdict;

/// Boots of [`hundred_boots`].
pub const BOOTS: usize = 100;

/// Temp entries (swap disk dirs) whose name starts with `marker`.
pub fn temp_leftovers(tmp: &Path, marker: &str) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(marker))
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line holds `marker`, after letting killed
/// ones go (up to 1 s).
fn process_leftovers(marker: &str) -> Vec<u32> {
    let mut left = reaper::processes_matching(marker);
    for _ in 0..10 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        left = reaper::processes_matching(marker);
    }
    left
}

/// `BOOTS` boots of `spec` one after the other: every one must pass, and
/// afterwards no QEMU of this runner and no temp disk of it may remain.
pub fn hundred_boots(name: &str, spec: &BootSpec) -> CaseResult {
    let t = Instant::now();
    let mut failed = Vec::new();
    let mut peak_dirs = 0;
    for i in 0..BOOTS {
        let out = boot::boot(spec, &mut |_| {
            // While a boot runs, exactly its own disk exists.
            peak_dirs =
                peak_dirs.max(temp_leftovers(&std::env::temp_dir(), &reaper::marker()).len());
        });
        if *out.verdict() != Verdict::Pass {
            failed.push(format!(
                "boot {i}: {}: {}",
                out.verdict(),
                out.judgement.reason
            ));
        }
    }
    let marker = reaper::marker();
    let procs = process_leftovers(&marker);
    let dirs = temp_leftovers(&std::env::temp_dir(), &marker);
    let ok = failed.is_empty() && procs.is_empty() && dirs.is_empty() && peak_dirs == 1;
    CaseResult {
        name: name.into(),
        ok,
        message: format!(
            "{BOOTS} boots of `{}` in {:.1} s: {} passed; QEMU processes left: {}, temp disks left: {} \
             (at most {peak_dirs} at once)",
            spec.append,
            t.elapsed().as_secs_f64(),
            BOOTS - failed.len(),
            procs.len(),
            dirs.len()
        ),
        details: [
            failed.join("\n"),
            format!("processes: {procs:?}; temp dirs: {dirs:?}"),
        ]
        .join("\n"),
        time: t.elapsed(),
    }
}

/// What the interrupted compare is given.
pub struct InterruptSetup {
    /// The runner binary (this one).
    pub runner: PathBuf,
    pub kernel: PathBuf,
    pub accel: Accel,
}

/// Runs `compare` (2 variants × 3 boots of 0.3 s on 1 CPU, one at a time)
/// in a child runner, sends it SIGINT once two boots finished, and checks
/// the exit status 130, the JSON (interrupted, the finished boots), and
/// that none of its QEMUs or temp disks remain.
pub fn interrupted_compare(name: &str, s: &InterruptSetup) -> CaseResult {
    let t = Instant::now();
    let r = interrupt_check(s);
    CaseResult {
        name: name.into(),
        ok: r.is_ok(),
        message: match &r {
            Ok(m) => m.clone(),
            Err(e) => e.clone(),
        },
        details: String::new(),
        time: t.elapsed(),
    }
}

fn interrupt_check(s: &InterruptSetup) -> Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix("forkswap-interrupt-check-")
        .tempdir()
        .map_err(|e| format!("cannot make a temp dir: {e}"))?;
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| format!("cannot make {}: {e}", tmp.display()))?;
    let json = dir.path().join("compare.json");
    let mut child = Command::new(&s.runner)
        .arg("--kernel")
        .arg(&s.kernel)
        .args([
            "compare",
            "--variants",
            "swap-prealloc,split-skip",
            "--boots",
            "3",
            "--seconds",
            "0.3",
            "--cpus",
            "1",
            "--jobs",
            "1",
            "--accel",
            s.accel.name(),
            "--json",
        ])
        .arg(&json)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", s.runner.display()))?;
    let pid = child.id();
    let marker = format!("forkswap-{pid}-");
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(err) = err {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if l.starts_with("[2/6]") {
                    let _ = tx.send(());
                }
                all.push(l);
            }
        }
        all
    });
    let two_done = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    // The runner gives itself at most reaper::GRACE; never wait forever.
    let deadline = Instant::now() + reaper::GRACE + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stderr = reader.join().unwrap_or_default();
    let last = stderr.last().cloned().unwrap_or_default();
    if !two_done {
        return Err(format!("two boots never finished; stderr ends: {last}"));
    }
    let status = status.ok_or("the interrupted compare did not exit")?;
    let procs = process_leftovers(&marker);
    let dirs: Vec<String> = std::fs::read_dir(&tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if status.code() != Some(130) {
        return Err(format!(
            "exit status {status}, not 130; stderr ends: {last}"
        ));
    }
    if !procs.is_empty() || !dirs.is_empty() {
        return Err(format!(
            "left behind: QEMU pids {procs:?}, temp entries {dirs:?}"
        ));
    }
    let text = std::fs::read_to_string(&json).map_err(|e| format!("no JSON: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let boots = v["boots"].as_array().map_or(0, Vec::len);
    if v["interrupted"] != true || v["signal"] != "SIGINT" || !(2..6).contains(&boots) {
        return Err(format!(
            "JSON says interrupted {}, signal {}, {boots} boots (want true, SIGINT, 2..=5)",
            v["interrupted"], v["signal"]
        ));
    }
    Ok(format!(
        "SIGINT after 2 of 6 boots: exit 130, JSON interrupted with {boots} finished boots, \
         no QEMU and no temp disk left"
    ))
}
