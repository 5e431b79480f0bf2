//! The boot suite's checks of the harness itself, with real QEMU boots:
//! a hundred short boots in a row leave no QEMU process and no temp disk
//! behind, and a `compare` interrupted by SIGINT mid-matrix keeps its
//! finished boots, writes its JSON marked interrupted, exits 130 and leaves
//! nothing behind either; one killed by SIGKILL (no handler runs) still
//! takes its QEMU with it and keeps its checkpoint, and the next runner
//! sweeps the swap disk it left. A full file system under the swap disk
//! is an infrastructure error in `stress` and `compare`, never a hang.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::signal::Signal;
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
pub(crate) fn process_leftovers(marker: &str) -> Vec<u32> {
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
    let (tmp, marker) = (std::env::temp_dir(), reaper::marker());
    let mut failed = Vec::new();
    let mut peak_dirs = 0;
    for i in 0..BOOTS {
        let out = boot::boot(spec, &mut |_| {
            // While a boot runs, exactly its own disk exists.
            peak_dirs = peak_dirs.max(temp_leftovers(&tmp, &marker).len());
        });
        if *out.verdict() != Verdict::Pass {
            failed.push(format!(
                "boot {i}: {}: {}",
                out.verdict(),
                out.judgement.reason
            ));
        }
    }
    let procs = process_leftovers(&marker);
    let dirs = temp_leftovers(&tmp, &marker);
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

/// Runs `compare` (2 variants × 3 boots of 0.3 s, or 3 s for SIGKILL, on
/// 1 CPU, one at a time) in a child runner and interrupts it with `sig`:
/// - SIGINT once two boots finished: exit status 130, the JSON marked
///   interrupted by SIGINT with the finished boots, no QEMU and no temp
///   disk left.
/// - SIGKILL while a boot's QEMU runs, after one boot finished: that QEMU
///   dies with the runner, the JSON checkpoint (interrupted, no signal)
///   holds the finished boots, and [`crate::disk::sweep_stale_dirs`] removes
///   the one swap disk left.
pub fn interrupted_compare(name: &str, s: &InterruptSetup, sig: Signal) -> CaseResult {
    let t = Instant::now();
    let r = interrupt_check(s, sig);
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

/// Size of the file system [`disk_full`] puts the swap disks on.
pub const FULL_FS: &str = "size=1M";

/// `stress` and `compare` (one short boot of the committed fix each) in a
/// child runner whose `TMPDIR` is a 1 MiB tmpfs — too small for the swap
/// disk — mounted in a private mount namespace (`unshare -m`; `-rm` when
/// not root), so it disappears with the child. Both must exit 3 and call
/// the boot infra, with a reason naming the disk and `No space left on
/// device`; compare's row must count it as infra, not as a hang.
pub fn disk_full(name: &str, s: &InterruptSetup) -> CaseResult {
    let t = Instant::now();
    let r = disk_full_check(s);
    CaseResult {
        name: name.into(),
        ok: r.is_ok(),
        message: r.unwrap_or_else(|e| e),
        details: String::new(),
        time: t.elapsed(),
    }
}

fn disk_full_check(s: &InterruptSetup) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::Builder::new()
        .prefix("forkswap-disk-full-check-")
        .tempdir()
        .map_err(|e| format!("cannot make a temp dir: {e}"))?;
    let mnt = dir.path().join("full");
    std::fs::create_dir(&mnt).map_err(|e| format!("cannot make {}: {e}", mnt.display()))?;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    // As root, this very binary through /proc (see interrupted_compare);
    // an unprivileged user namespace may not exec that link.
    let runner = if root {
        PathBuf::from(format!("/proc/{}/exe", std::process::id()))
    } else {
        std::env::current_exe().map_err(|e| format!("which runner: {e}"))?
    };
    let run = |json: &Path, args: &[&str]| -> Result<(Option<i32>, String), String> {
        let o = Command::new("unshare")
            .arg(if root { "-m" } else { "-rm" })
            .args([
                "sh",
                "-c",
                "mount -t tmpfs -o \"$0\" forkswap-full \"$1\" || exit 99; shift; exec \"$@\"",
                FULL_FS,
            ])
            .arg(&mnt)
            .arg(&runner)
            .arg("--kernel")
            .arg(&s.kernel)
            .args(args)
            .args(["--seconds", "0.3", "--cpus", "1", "--accel", s.accel.name()])
            .arg("--json")
            .arg(json)
            .env("TMPDIR", &mnt)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.code() == Some(99) {
            return Err(format!(
                "cannot mount a tmpfs in a private mount namespace (needs root or user namespaces): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok((o.status.code(), out))
    };
    let read = |p: &Path| -> Result<serde_json::Value, String> {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("no JSON {}: {e}", p.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("bad JSON {}: {e}", p.display()))
    };
    let names_disk = |reason: &str| {
        reason.contains("swap disk")
            && reason.contains(&mnt.display().to_string())
            && reason.contains("No space left on device")
    };
    let sj = dir.path().join("stress.json");
    let (code, out) = run(
        &sj,
        &["stress", "--variant", "swap-prealloc", "--seed", "1"],
    )?;
    let v = read(&sj)?;
    let reason = v["reason"].as_str().unwrap_or_default().to_string();
    if code != Some(3) || v["outcome"] != "infra" || !names_disk(&reason) {
        return Err(format!(
            "stress: exit {code:?}, outcome {}, reason {reason:?} (want 3, infra, the disk and ENOSPC); stdout: {}",
            v["outcome"],
            crate::error::one_line(&out)
        ));
    }
    let cj = dir.path().join("compare.json");
    let (ccode, cout) = run(
        &cj,
        &[
            "compare",
            "--variants",
            "swap-prealloc",
            "--boots",
            "1",
            "--jobs",
            "1",
        ],
    )?;
    let c = read(&cj)?;
    let row = &c["variants"][0];
    let creason = c["boots"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if ccode != Some(3) || row["infra"] != 1 || row["hangs"] != 0 || !names_disk(&creason) {
        return Err(format!(
            "compare: exit {ccode:?}, infra {}, hangs {}, reason {creason:?} (want 3, 1, 0, the disk and ENOSPC); stdout: {}",
            row["infra"],
            row["hangs"],
            crate::error::one_line(&cout)
        ));
    }
    Ok(format!(
        "TMPDIR on a {FULL_FS} tmpfs: stress exit 3 and compare exit 3 (infra 1, hangs 0): {reason}"
    ))
}

fn interrupt_check(s: &InterruptSetup, sig: Signal) -> Result<String, String> {
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
            // A killed boot must be one that would still run for a while
            // had nobody killed its QEMU.
            if sig == Signal::SIGKILL { "3" } else { "0.3" },
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
    let marker = reaper::marker_for(pid);
    let kill = sig == Signal::SIGKILL;
    // SIGINT after two boots; SIGKILL after one, in the middle of the next.
    let after = if kill { "[1/6]" } else { "[2/6]" };
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(err) = err {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if l.starts_with(after) {
                    let _ = tx.send(());
                }
                all.push(l);
            }
        }
        all
    });
    let finished = rx.recv_timeout(Duration::from_secs(60)).is_ok();
    let mut running = Vec::new();
    if kill && finished {
        // Wait for the next boot's QEMU, and give it the moment setpriv
        // needs to arm the parent-death signal and exec QEMU.
        let t = Instant::now();
        while running.is_empty() && t.elapsed() < Duration::from_secs(2) {
            running = reaper::processes_matching(&marker);
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
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
    let procs = process_leftovers(&marker);
    let stderr = reader.join().unwrap_or_default();
    let last = stderr.last().cloned().unwrap_or_default();
    if !finished {
        return Err(format!("{after} boots never finished; stderr ends: {last}"));
    }
    let status = status.ok_or("the interrupted compare did not exit")?;
    if kill && running.is_empty() {
        return Err(format!("no QEMU was running to kill; stderr ends: {last}"));
    }
    let (want_code, want_signal) = if kill {
        (None, serde_json::Value::Null)
    } else {
        (Some(130), serde_json::Value::from("SIGINT"))
    };
    if status.code() != want_code || (kill && status.signal() != Some(9)) {
        return Err(format!(
            "exit status {status}, not {}; stderr ends: {last}",
            if kill { "killed by SIGKILL" } else { "130" }
        ));
    }
    if !procs.is_empty() {
        for p in &procs {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p as i32), Signal::SIGKILL);
        }
        return Err(format!(
            "QEMU pids {procs:?} outlived the runner (running before {sig}: {running:?})"
        ));
    }
    let mut dirs = temp_leftovers(&tmp, "");
    let left = dirs.len();
    if kill {
        if left > 1 {
            return Err(format!("more than one temp disk left: {dirs:?}"));
        }
        let swept = crate::disk::sweep_stale_dirs(&tmp);
        dirs = temp_leftovers(&tmp, "");
        if swept != left {
            return Err(format!("the sweep removed {swept} of {left} temp disks"));
        }
    }
    if !dirs.is_empty() {
        return Err(format!("temp entries left: {dirs:?}"));
    }
    let text = std::fs::read_to_string(&json).map_err(|e| format!("no JSON: {e}"))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
    let boots = v["boots"].as_array().map_or(0, Vec::len);
    let want_boots = if kill { 1..6 } else { 2..6 };
    if v["interrupted"] != true || v["signal"] != want_signal || !want_boots.contains(&boots) {
        return Err(format!(
            "JSON says interrupted {}, signal {}, {boots} boots (want true, {want_signal}, {want_boots:?})",
            v["interrupted"], v["signal"]
        ));
    }
    Ok(if kill {
        format!(
            "SIGKILL after 1 of 6 boots, QEMU {running:?} running: it died with the runner; \
             JSON checkpoint interrupted with {boots} finished boots; {left} swap disk left, swept"
        )
    } else {
        format!(
            "SIGINT after 2 of 6 boots: exit 130, JSON interrupted with {boots} finished boots, \
             no QEMU and no temp disk left"
        )
    })
}
