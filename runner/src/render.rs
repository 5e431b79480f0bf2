//! Human-readable output: one-line summaries of records, console lines for
//! live streaming, and the verdict block printed after a boot.

use std::fmt::Write as _;
use std::time::Duration;

use stress::Counter;
use stress::proto::{Frame, Record};

use crate::boot::BootOutcome;
use crate::console::{ConsoleLine, KtapEntry, LineKind};
use crate::verdict::{Verdict, exception_line};

/// One line for a record, e.g. `Hello: kernel 0.1.0, 4 CPUs, 256 MiB, disk mmio, cmdline "mode=probe"`.
pub fn record_summary(f: &Frame) -> String {
    let body = match &f.rec {
        Record::Hello {
            kernel,
            cpus,
            mem_mib,
            transport,
            cmdline,
        } => format!(
            "Hello: kernel {kernel}, {cpus} CPUs, {mem_mib} MiB, disk {transport}, cmdline \"{cmdline}\""
        ),
        Record::Ready { cpus, boot_ns } => format!(
            "Ready: {cpus} CPUs checked in after {:.1} ms",
            *boot_ns as f64 / 1e6
        ),
        Record::Progress { ms, stats } => {
            let nonzero: Vec<String> = Counter::ALL
                .iter()
                .filter(|c| stats.get(**c) != 0)
                .map(|c| format!("{} {}", c.name(), stats.get(*c)))
                .collect();
            format!("Progress at {ms} ms: {}", nonzero.join(", "))
        }
        Record::Failure(fl) => format!("Failure: {fl}"),
        Record::Hang { ms, waits, .. } => {
            let w: Vec<String> = waits
                .iter()
                .map(|w| format!("cpu{}: {} ({} ms)", w.cpu, w.wait, w.stalled_ms))
                .collect();
            format!("Hang: no progress for {ms} ms; {}", w.join("; "))
        }
        Record::Panic {
            cpu,
            message,
            exception,
        } => match exception {
            Some(e) => format!("Panic on cpu {cpu}: {message} [{}]", exception_line(e)),
            None => format!("Panic on cpu {cpu}: {message}"),
        },
        Record::Measure { name, value, unit } => format!("Measure: {name} = {value} {unit}"),
        Record::Done { verdict, ms, .. } => format!("Done: {verdict:?} after {ms} ms"),
    };
    format!("[cpu{} #{}] {body}", f.cpu, f.seq)
}

/// A console line for live display: records as summaries, garbled lines
/// flagged, the rest as printed. `raw` shows every line exactly as printed.
pub fn console_line(l: &ConsoleLine, raw: bool) -> String {
    let t = format!("{:>9.3}", l.at.as_secs_f64());
    if raw {
        return format!("{t} {}", l.text);
    }
    match &l.kind {
        LineKind::Record(f) => format!("{t} {}", record_summary(f)),
        LineKind::Garbled(why) => format!(
            "{t} !! garbled ({why}): {}",
            crate::console::preview(&l.text)
        ),
        LineKind::Ktap(KtapEntry::Result(r)) if r.failed() => format!("{t} {}  <-- FAILED", l.text),
        _ => format!("{t} {}", l.text),
    }
}

/// Milliseconds with one decimal, or `-`.
pub fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
}

/// The verdict block: name and reason, timings, and for a non-pass the last
/// console lines and QEMU's stderr.
pub fn outcome(out: &BootOutcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "verdict: {} ({})", out.verdict(), out.judgement.reason);
    let _ = writeln!(
        s,
        "timings: Hello {}, Ready {}, exit {}; QEMU {}",
        ms(out.timings.hello),
        ms(out.timings.ready),
        ms(out.timings.exit),
        out.exit
    );
    if *out.verdict() != Verdict::Pass {
        s.push_str(&details(out, ""));
    }
    s
}

/// A console line as the verdict block shows it: a record as its summary,
/// the rest as printed (cut to a preview).
pub fn tail_line(l: &str) -> String {
    match crate::console::classify(l) {
        LineKind::Record(f) => record_summary(&f),
        _ => crate::console::preview(l),
    }
}

/// The last console lines and stderr of a boot, each line prefixed.
pub fn details(out: &BootOutcome, prefix: &str) -> String {
    let mut s = String::new();
    if !out.command.is_empty() {
        let _ = writeln!(s, "{prefix}command: {}", out.command);
    }
    if out.console.tail.is_empty() {
        let _ = writeln!(s, "{prefix}console: (nothing printed)");
    } else {
        let _ = writeln!(s, "{prefix}last {} console lines:", out.console.tail.len());
        for l in &out.console.tail {
            let _ = writeln!(s, "{prefix}  | {}", tail_line(l));
        }
    }
    if !out.stderr_tail.is_empty() {
        let _ = writeln!(s, "{prefix}QEMU stderr:");
        for l in &out.stderr_tail {
            let _ = writeln!(s, "{prefix}  | {l}");
        }
    }
    s
}
