//! How a suite boot becomes KTAP cases: the boot's own case, one per kernel
//! boot test, the orphan check, and the evidence a non-pass verdict block
//! must show.

use std::time::{Duration, Instant};

use crate::boot::BootOutcome;
use crate::harness;
use crate::reaper;
use crate::render;
use crate::report::CaseResult;
use crate::suite_plan::ORPHAN_CASE;
use crate::verdict::Verdict;

/// What the verdict block of a non-pass boot ([`render::outcome`]) lacks of
/// the evidence it must show: the verdict's name, the last console line
/// (or "nothing printed") and QEMU's last stderr line. `None` when all is there.
pub fn evidence_missing(out: &BootOutcome, shown: &str) -> Option<String> {
    if !shown.contains(&format!("verdict: {}", out.verdict())) {
        return Some(format!("the verdict name {}", out.verdict()));
    }
    match out.console.tail.back() {
        None if !shown.contains("console: (nothing printed)") => {
            return Some("the note that the console was empty".into());
        }
        Some(last) if !shown.contains(&render::tail_line(last)) => {
            return Some(format!("the last console line {last:?}"));
        }
        _ => {}
    }
    match out.stderr_tail.iter().rev().find(|l| !l.trim().is_empty()) {
        Some(l) if !shown.contains(l.as_str()) => Some(format!("QEMU's stderr line {l:?}")),
        _ => None,
    }
}

pub fn boot_case(name: &str, out: &BootOutcome, time: Duration) -> CaseResult {
    let ok = *out.verdict() == Verdict::Pass;
    CaseResult {
        name: name.into(),
        ok,
        message: format!(
            "{}: {} (Ready at {}, exit at {})",
            out.verdict(),
            out.judgement.reason,
            render::ms(out.timings.ready),
            render::ms(out.timings.exit)
        ),
        details: if ok {
            String::new()
        } else {
            render::details(out, "")
        },
        time,
    }
}

/// The case of kernel boot test `test` in the boot's KTAP output.
pub fn kernel_test_case(name: &str, test: &str, out: &BootOutcome) -> CaseResult {
    let (ok, message) = match out.ktap().result(test) {
        Some(r) if r.is_skip() => (
            false,
            format!(
                "skipped by the kernel ({}); the suite attaches a disk and expects every test to run",
                r.directive.as_deref().unwrap_or("SKIP")
            ),
        ),
        Some(r) if r.ok => (true, r.directive.clone().unwrap_or_default()),
        Some(r) => (
            false,
            format!(
                "not ok: {}",
                r.directive.as_deref().unwrap_or("(no reason given)")
            ),
        ),
        None => (
            false,
            format!(
                "no KTAP result; boot verdict {}: {}",
                out.verdict(),
                out.judgement.reason
            ),
        ),
    };
    CaseResult {
        name: name.into(),
        ok,
        message,
        details: String::new(),
        time: Duration::ZERO,
    }
}

/// The orphan check: no process of this runner's QEMUs is left.
pub fn orphan_case() -> CaseResult {
    let t = Instant::now();
    // Give the kernel a moment to finish tearing down killed processes.
    let left = harness::process_leftovers(&reaper::marker());
    CaseResult {
        name: ORPHAN_CASE.into(),
        ok: left.is_empty(),
        message: if left.is_empty() {
            "no QEMU of this run is left".into()
        } else {
            format!("QEMU processes left behind: pids {left:?}")
        },
        details: String::new(),
        time: t.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_block_must_show_the_last_lines_and_stderr() {
        use crate::testkit::{hello, outcome, ready};
        use crate::verdict::Exit;
        let mut out = outcome(vec![hello(), ready()], Exit::Signal(9));
        let shown = render::outcome(&out);
        assert_eq!(evidence_missing(&out, &shown), None, "{shown}");
        // The last line (Ready, shown as its summary) must be there.
        let cut = shown.replace("Ready: 4 CPUs", "Ready: ? CPUs");
        assert!(
            evidence_missing(&out, &cut).is_some_and(|m| m.contains("last console line")),
            "{cut}"
        );
        assert!(evidence_missing(&out, "verdict: Pass").is_some());
        // QEMU's last stderr line too.
        out.stderr_tail = vec!["qemu: something broke".into(), String::new()];
        let shown = render::outcome(&out);
        assert_eq!(evidence_missing(&out, &shown), None, "{shown}");
        let no_stderr = shown.replace("qemu: something broke", "");
        assert!(evidence_missing(&out, &no_stderr).is_some_and(|m| m.contains("stderr")));
        // An empty console must be said to be empty.
        let empty = outcome(vec![], Exit::Status(33));
        let shown = render::outcome(&empty);
        assert!(shown.contains("console: (nothing printed)"), "{shown}");
        assert_eq!(evidence_missing(&empty, &shown), None);
    }
}
