//! Named verdicts and the one mapping from (QEMU exit, console, timeout) to a
//! verdict, in the spirit of kvm-unit-tests and kunit_tool.
//!
//! A boot is a `Pass` only when the kernel's own `Done{verdict: pass}` record
//! arrived, QEMU exited with the Pass status (33), every KTAP result that was
//! planned arrived and passed, no Failure/Panic/Hang record was printed, and
//! the console broke no protocol rule. Everything else gets the most
//! specific name below, checked in the order of [`judge`].

use std::fmt;
use std::time::Duration;

use stress::proto::{self, Exception, ExitCode, Record};

use crate::console::{Console, preview};

/// How a boot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The kernel said pass, exited with Pass, and the console was clean.
    Pass,
    /// The kernel reported a failure: `Done{fail}`, a failed or missing KTAP
    /// result, a Failure record, or the Fail exit status.
    Fail,
    /// A kernel panic: a Panic record without a CPU exception, or the Panic
    /// exit status without any record.
    Panic,
    /// An unexpected CPU exception: a Panic record that names the exception
    /// (vector, rip, cr2, stack guard).
    Exception,
    /// The kernel said that the disk it needs is missing (a Panic record
    /// whose message says so): the boot was set up without `-drive`.
    DiskMissing,
    /// The CPU reset: QEMU exited with status 0 under `-no-reboot`, no Done.
    TripleFault,
    /// The kernel's watchdog reported a hang, or the timeout expired while
    /// the kernel was still printing.
    Hang,
    /// The timeout expired with no output at all, none since Ready, or none
    /// during the last seconds.
    HangSilent,
    /// A damaged record line, binary junk, or a broken protocol (lost line,
    /// records out of order).
    Garbled,
    /// QEMU exited with the Pass status before the kernel printed any record.
    EarlyExit,
    /// QEMU exited without a Done record: cut mid-line, killed by a signal,
    /// an unknown status, or the Pass status with records but no Done.
    Crashed,
    /// QEMU could not start, exited 1 with an error on stderr, or it
    /// stopped the guest: its accelerator failed (`KVM internal error`), or
    /// QMP says at the timeout that the guest does not run (`io-error`,
    /// `paused`, `prelaunch`, ...).
    QemuFailed,
    /// The harness could not run the boot (build failed, no disk space, ...).
    Infra,
}

impl Verdict {
    /// Every verdict, in the order of the README table.
    pub const ALL: [Verdict; 13] = [
        Verdict::Pass,
        Verdict::Fail,
        Verdict::Panic,
        Verdict::Exception,
        Verdict::DiskMissing,
        Verdict::TripleFault,
        Verdict::Hang,
        Verdict::HangSilent,
        Verdict::Garbled,
        Verdict::EarlyExit,
        Verdict::Crashed,
        Verdict::QemuFailed,
        Verdict::Infra,
    ];

    /// The verdict's name as printed.
    pub const fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "Pass",
            Verdict::Fail => "Fail",
            Verdict::Panic => "Panic",
            Verdict::Exception => "Exception",
            Verdict::DiskMissing => "DiskMissing",
            Verdict::TripleFault => "TripleFault",
            Verdict::Hang => "Hang",
            Verdict::HangSilent => "HangSilent",
            Verdict::Garbled => "Garbled",
            Verdict::EarlyExit => "EarlyExit",
            Verdict::Crashed => "Crashed",
            Verdict::QemuFailed => "QemuFailed",
            Verdict::Infra => "Infra",
        }
    }

    /// The runner's exit status for a single boot with this verdict
    /// (`cargo xtask run`): 0 pass, 3 when the harness failed (QEMU, the
    /// disk it should have attached), 1 otherwise.
    pub const fn exit_status(&self) -> u8 {
        match self {
            Verdict::Pass => crate::error::EXIT_OK,
            Verdict::QemuFailed | Verdict::Infra | Verdict::DiskMissing => crate::error::EXIT_INFRA,
            _ => crate::error::EXIT_FAILURE,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A verdict and the one-line reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
}

impl Judgement {
    fn new(verdict: Verdict, reason: impl Into<String>) -> Self {
        Judgement {
            verdict,
            reason: reason.into(),
        }
    }
}

/// How the QEMU process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Status(i32),
    /// It was killed by this signal (not by the runner).
    Signal(i32),
    /// The runner killed it when the timeout expired.
    TimedOut,
    /// It could not be started: why.
    SpawnFailed(String),
    /// QEMU stopped the guest and was killed: its stderr line saying so
    /// (e.g. `KVM internal error`), or the run state QMP reported at the
    /// timeout.
    GuestStopped(String),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Status(s) => match ExitCode::from_qemu_status(*s) {
                Some(c) => write!(f, "status {s} ({c:?})"),
                None => write!(f, "status {s}"),
            },
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => f.write_str("killed at the timeout"),
            Exit::SpawnFailed(e) => write!(f, "not started: {e}"),
            Exit::GuestStopped(l) => write!(f, "stopped the guest ({l})"),
        }
    }
}

/// What the verdict needs besides the console.
#[derive(Clone, Debug)]
pub struct Ending<'a> {
    pub exit: &'a Exit,
    /// QEMU's last stderr lines.
    pub stderr_tail: &'a [String],
    /// Time from spawn to the end (the timeout when it expired).
    pub elapsed: Duration,
    /// A timed-out boot that printed nothing for this long at the end is
    /// silent (HangSilent) rather than busy (Hang).
    pub quiet: Duration,
}

/// The quiet window for a timeout: half of it, at most 2 s.
pub fn quiet_window(timeout: Duration) -> Duration {
    (timeout / 2).min(Duration::from_secs(2))
}

/// Maps how a boot ended to its verdict. The checks run in this order; the
/// first that applies decides:
///
/// 1. QEMU did not start → `QemuFailed`.
/// 2. Status 1, nothing on the console, an error on stderr → `QemuFailed`.
/// 3. A Panic record → `DiskMissing` when its message says the disk is
///    missing ([`disk_missing`]), `Exception` when it names a CPU exception,
///    else `Panic`.
/// 4. QEMU stopped the guest (its accelerator failed, or QMP said at the
///    timeout that the guest did not run) → `QemuFailed`.
/// 5. A garbled line or a protocol violation → `Garbled`.
/// 6. A Hang record (the kernel's watchdog) → `Hang`.
/// 7. Timeout → `Hang` if the console was busy during the quiet window,
///    else `HangSilent` (also when nothing came since Ready).
/// 8. Console cut mid-line → `Crashed` (before Done) / `Garbled` (after Done).
/// 9. Status 0 → `TripleFault` without Done, `Crashed` with one.
/// 10. Killed by a signal → `Crashed`.
/// 11. Status Panic/Hang → `Panic`/`Hang`; status Fail → `Fail`; an unknown
///     status → `QemuFailed` (1 with stderr) or `Crashed`.
/// 12. Status Pass: no record at all → `EarlyExit`; no Done → `Crashed`;
///     any failure evidence (Done{fail}, Failure record, failed or missing
///     KTAP results, `mode=tests` without KTAP) → `Fail`; otherwise `Pass`.
pub fn judge(c: &Console, end: &Ending) -> Judgement {
    use Verdict::*;
    let stderr_last = end
        .stderr_tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string());
    let status = match end.exit {
        Exit::SpawnFailed(e) => {
            return Judgement::new(QemuFailed, format!("QEMU did not start: {e}"));
        }
        Exit::Status(s) => Some(*s),
        _ => None,
    };
    if status == Some(1)
        && c.frames.is_empty()
        && !c.ktap.seen()
        && let Some(err) = &stderr_last
    {
        return Judgement::new(QemuFailed, format!("QEMU exited with status 1: {err}"));
    }
    if let Some((cpu, msg, exc)) = c.panic() {
        let v = if disk_missing(msg) {
            DiskMissing
        } else if exc.is_some() {
            Exception
        } else {
            Panic
        };
        return Judgement::new(v, panic_reason(cpu, msg, exc));
    }
    if let Exit::GuestStopped(line) = end.exit {
        return Judgement::new(
            QemuFailed,
            format!("QEMU stopped the guest {}: {line}", progress(c)),
        );
    }
    if let Some(g) = c.garbled.first() {
        let more = match c.garbled.len() {
            1 => String::new(),
            n => format!(" (+{} more garbled lines)", n - 1),
        };
        return Judgement::new(
            Garbled,
            format!("line {}: {}: {}{more}", g.line, g.reason, g.preview),
        );
    }
    if let Some(v) = c.violations.first() {
        return Judgement::new(Garbled, format!("protocol violation: {v}"));
    }
    if let Some(Record::Hang { ms, waits, .. }) = c.hang() {
        let waits: Vec<String> = waits
            .iter()
            .map(|w| format!("cpu{} {} ({} ms)", w.cpu, w.wait, w.stalled_ms))
            .collect();
        return Judgement::new(
            Hang,
            format!(
                "the kernel's watchdog saw no progress for {ms} ms; waits: {}",
                if waits.is_empty() {
                    "none reported".into()
                } else {
                    waits.join(", ")
                }
            ),
        );
    }
    if *end.exit == Exit::TimedOut {
        let t = secs(end.elapsed);
        return match (c.last_line_at, c.ready_at) {
            (None, _) => Judgement::new(HangSilent, format!("no console output at all in {t}")),
            (Some(last), Some(ready)) if last <= ready => Judgement::new(
                HangSilent,
                format!(
                    "no console output since Ready (at {}), timeout {t}",
                    secs(ready)
                ),
            ),
            (Some(last), _) if end.elapsed.saturating_sub(last) >= end.quiet => Judgement::new(
                HangSilent,
                format!(
                    "console silent for the last {} (last line at {}), timeout {t}",
                    secs(end.elapsed.saturating_sub(last)),
                    secs(last)
                ),
            ),
            (Some(last), _) => Judgement::new(
                Hang,
                format!(
                    "still printing when the timeout ({t}) expired; last line at {}: {}",
                    secs(last),
                    c.tail.back().map(|l| preview(l)).unwrap_or_default()
                ),
            ),
        };
    }
    if let Some(cut) = &c.cut {
        let v = if c.done().is_some() { Garbled } else { Crashed };
        return Judgement::new(v, format!("{cut}; QEMU {}", end.exit));
    }
    let status = match (end.exit, status) {
        (Exit::Signal(s), _) => {
            return Judgement::new(
                Crashed,
                format!("QEMU was killed by signal {s} {}", progress(c)),
            );
        }
        (_, Some(s)) => s,
        _ => return Judgement::new(Crashed, format!("QEMU {}", end.exit)),
    };
    if status == 0 {
        return if c.done().is_some() {
            Judgement::new(
                Crashed,
                "QEMU exited with status 0 (guest reset) after Done instead of the kernel's exit code",
            )
        } else {
            Judgement::new(
                TripleFault,
                format!(
                    "the guest reset (QEMU status 0 under -no-reboot) {}",
                    progress(c)
                ),
            )
        };
    }
    match ExitCode::from_qemu_status(status) {
        None if status == 1 && stderr_last.is_some() => Judgement::new(
            QemuFailed,
            format!(
                "QEMU exited with status 1: {}",
                stderr_last.unwrap_or_default()
            ),
        ),
        None => Judgement::new(
            Crashed,
            format!(
                "QEMU exited with unexpected status {status} {}",
                progress(c)
            ),
        ),
        Some(ExitCode::Panic) => Judgement::new(
            Panic,
            format!(
                "the kernel exited with the Panic code (37) but printed no Panic record {}",
                progress(c)
            ),
        ),
        Some(ExitCode::Hang) => Judgement::new(
            Hang,
            "the kernel exited with the Hang code (39) but printed no Hang record",
        ),
        Some(ExitCode::Fail) => Judgement::new(
            Fail,
            failure_evidence(c).unwrap_or_else(|| {
                "the kernel exited with the Fail code (35) without saying why".into()
            }),
        ),
        Some(ExitCode::Pass) => {
            if c.frames.is_empty() && !c.ktap.seen() {
                return Judgement::new(
                    EarlyExit,
                    format!(
                        "early exit: QEMU exited with the Pass code before any record {}",
                        progress(c)
                    ),
                );
            }
            if c.done().is_none() {
                return Judgement::new(
                    Crashed,
                    format!(
                        "QEMU exited with the Pass code but no Done record arrived {}",
                        progress(c)
                    ),
                );
            }
            match failure_evidence(c) {
                Some(why) => {
                    Judgement::new(Fail, format!("{why} (although the exit code was Pass)"))
                }
                None => Judgement::new(Pass, pass_reason(c)),
            }
        }
    }
}

/// Words of the kernel's Panic message when a mode that needs the
/// virtio-blk disk finds none (`unikernel/src/modes/stress_mode.rs`, `diskbench.rs`:
/// "mode=stress needs the virtio-blk swap disk, and none was found").
pub const DISK_MISSING_WORDS: [&str; 2] = ["needs the virtio-blk", "none was found"];

/// True for a Panic message saying that the disk is missing.
pub fn disk_missing(message: &str) -> bool {
    DISK_MISSING_WORDS.iter().all(|w| message.contains(w))
}

/// The first reason the console gives for a failure, if any.
fn failure_evidence(c: &Console) -> Option<String> {
    if let Some(f) = c.failures().next() {
        return Some(format!("Failure: {f}"));
    }
    let failed: Vec<String> = c
        .ktap
        .failed()
        .map(|r| match &r.directive {
            Some(d) => format!("{} ({d})", r.name),
            None => r.name.clone(),
        })
        .collect();
    if !failed.is_empty() {
        return Some(format!("KTAP: not ok {}", failed.join(", ")));
    }
    if let Some(why) = c.ktap.incomplete() {
        return Some(why);
    }
    if c.mode() == Some("tests") && !c.ktap.seen() {
        return Some("mode=tests (says the Hello record) but no KTAP output arrived".into());
    }
    if c.done() == Some(proto::Verdict::Fail) {
        return Some("the kernel's Done record says fail".into());
    }
    None
}

fn pass_reason(c: &Console) -> String {
    if c.ktap.seen() {
        format!("Done: pass; {} KTAP results ok", c.ktap.results.len())
    } else {
        "Done: pass".into()
    }
}

/// One line for a Panic record.
pub fn panic_reason(cpu: u32, msg: &str, exc: Option<&Exception>) -> String {
    match exc {
        None => format!("cpu {cpu}: {msg}"),
        Some(e) => format!("cpu {cpu}: {msg} [{}]", exception_line(e)),
    }
}

/// One line for a CPU exception.
pub fn exception_line(e: &Exception) -> String {
    let mut s = format!(
        "vector {} {}, rip {:#x}, rsp {:#x}",
        e.vector, e.name, e.rip, e.rsp
    );
    if let Some(code) = e.error_code {
        s.push_str(&format!(", error code {code:#x}"));
    }
    if let Some(cr2) = e.cr2 {
        s.push_str(&format!(", cr2 {cr2:#x}"));
    }
    if e.stack_guard {
        s.push_str(", in a stack guard page");
    }
    s
}

/// "(after Ready)" / "(after Hello)" / "(before any record)".
fn progress(c: &Console) -> &'static str {
    if c.ready_at.is_some() {
        "(after Ready)"
    } else if c.hello_at.is_some() {
        "(after Hello, before Ready)"
    } else if c.lines > 0 {
        "(before any record)"
    } else {
        "(with an empty console)"
    }
}

/// Seconds with one decimal: "3.0 s".
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
