//! `cargo xtask stress`: one `mode=stress` boot with a live status line,
//! then the verdict — and for a failure, everything a kernel developer needs
//! to act on it: kind, seed, CPU, time to detection, detail, the
//! interleaving, and the command that runs the same seed again.
//!
//! Exit status: 0 clean, 1 caught or hang, 2 bad usage, 3 infrastructure,
//! 4 inconclusive (clean, but the race window never opened)
//! (see [`crate::stress_result`] for the classification).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Instant;

use stress::proto::Record;
use stress::{Stats, Variant};

use super::Ctx;
use crate::boot::{self, BootOutcome};
use crate::cli::StressArgs;
use crate::error::{EXIT_INCONCLUSIVE, Result};
use crate::finding::{self, Style};
use crate::json;
use crate::live::Live;
use crate::out;
use crate::reaper;
use crate::render;
use crate::seed;
use crate::stress_result::{BootResult, HangBy, Outcome};
use crate::stress_spec::{StressSpec, resolve_accel};

pub fn run(ctx: &Ctx, a: &StressArgs) -> Result<u8> {
    let variant = a.variant()?;
    for (flag, path) in [
        ("--json", &a.json),
        ("--trace-out", &a.trace_out),
        ("--trace-svg", &a.trace_svg),
    ] {
        if let Some(p) = path {
            json::ensure_writable(flag, p)?;
        }
    }
    let seed = a.seed.unwrap_or_else(seed::random);
    let kernel = ctx.kernel()?;
    let qemu = ctx.qemu()?;
    let accel = resolve_accel(&a.boot, &kernel, &qemu).accel;
    let spec = StressSpec::from_args(&a.boot, variant, seed, accel, ctx.kernel.clone());
    crate::note!(
        "stress: scenario {} variant {} seed {}{} on {} for {} s (timeout {} s)",
        a.scenario,
        spec.variant,
        seed::show(seed),
        if a.seed.is_none() { " (random)" } else { "" },
        spec.label(),
        crate::stress_spec::secs_arg(spec.duration),
        spec.timeout().as_secs()
    );
    let bspec = spec.boot_spec(kernel, qemu);
    let mut live = Live::new(spec.duration, ctx.verbose, spec.variant.scenario().costs);
    let t = Instant::now();
    let _graceful = reaper::Graceful::new();
    let out = boot::boot(&bspec, &mut |l| live.line(l));
    live.finish();
    if let Some(sig) = reaper::interrupted()
        && out.killed_by_interrupt()
    {
        return interrupted(&spec, &out, sig, t.elapsed(), a.json.as_deref());
    }
    let result = BootResult::from_outcome(&spec, &out, t.elapsed());
    if ctx.verbose {
        crate::note!("command: {}", out.command);
    }
    let style = Style {
        bold: std::io::stdout().is_terminal(),
        last: a.events,
    };
    // The files first: whatever happens to the terminal, the result is kept.
    let mut text = report(&spec, &out, &result, style);
    if a.trace_out.is_some() || a.trace_svg.is_some() {
        match crate::tracefiles::Finding::of(&out) {
            Some(f) => {
                for line in f.write(a.trace_out.as_deref(), a.trace_svg.as_deref())? {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            None => crate::note!("no failure or hang: no trace files written"),
        }
    }
    if let Some(p) = &a.json {
        json::write_atomic(p, &result)?;
    }
    let printed = out::stdout(&text);
    if let Some(p) = &a.json {
        crate::note!("result written to {}", p.display());
    }
    Ok(out::exit_status(printed, result.exit_status))
}

/// SIGINT/SIGTERM killed the boot: say how far it got, write the
/// interrupted document to `--json`, exit 130/143.
fn interrupted(
    spec: &StressSpec,
    out: &BootOutcome,
    sig: i32,
    elapsed: std::time::Duration,
    json_path: Option<&std::path::Path>,
) -> Result<u8> {
    let (stats, run_ms) = out.last_stats();
    let name = reaper::signal_name(sig);
    let mut text = format!(
        "INTERRUPTED by {name} after {:.1} s: no verdict for {} seed {}\n",
        elapsed.as_secs_f64(),
        spec.variant,
        seed::show(spec.seed)
    );
    if let Some(st) = &stats {
        let _ = writeln!(
            text,
            "  last counters (at {} ms): {}",
            run_ms.unwrap_or_default(),
            counters(st, spec.variant)
        );
    }
    let _ = writeln!(text, "replay:\n  {}", spec.replay());
    if let Some(p) = json_path {
        let doc = json::StressInterrupted {
            scenario: spec.variant.scenario_id(),
            schema: json::SCHEMA,
            interrupted: true,
            signal: name.into(),
            variant: spec.variant,
            seed: spec.seed,
            cpus: spec.cpus,
            seconds: spec.duration.as_secs_f64(),
            machine: spec.machine,
            accel: spec.accel,
            stats,
            run_ms,
            elapsed_ms: elapsed.as_millis() as u64,
            replay: spec.replay(),
        };
        json::write_atomic(p, &doc)?;
    }
    let printed = out::stdout(&text);
    if let Some(p) = json_path {
        crate::note!("interrupted run written to {}", p.display());
    }
    Ok(out::exit_status(printed, (128 + sig) as u8))
}

/// The counters a developer looks at first, ending with the cost counters
/// of `variant`'s scenario (`Scenario::costs`).
pub fn counters(s: &Stats, variant: Variant) -> String {
    format!(
        "forks {}, faults {}, swap-ins {} ({} pages), window hits {}{}",
        s.forks,
        s.faults,
        s.swapins,
        s.swapin_pages,
        s.window_hits,
        crate::live::cost_list(s, variant.scenario().costs)
    )
}

/// The report printed after the boot.
pub fn report(spec: &StressSpec, out: &BootOutcome, r: &BootResult, style: Style) -> String {
    let mut s = String::new();
    let label = format!(
        "{} seed {} on {}",
        spec.variant,
        seed::show(spec.seed),
        spec.label()
    );
    let run = r
        .run_ms
        .map_or("-".into(), |ms| format!("{:.1} s", ms as f64 / 1e3));
    match r.outcome {
        Outcome::Caught => {
            let f = out.console.failures().next();
            let _ = writeln!(s, "verdict: CAUGHT — {label}");
            if let (Some(f), Some(info)) = (f, &r.failure) {
                let _ = writeln!(s, "  failure kind:      {}", info.kind);
                let _ = writeln!(
                    s,
                    "  variant:           {} ({})",
                    spec.variant,
                    spec.variant.summary()
                );
                let _ = writeln!(s, "  seed:              {}", seed::show(spec.seed));
                let _ = writeln!(s, "  caught on:         cpu {}", info.cpu);
                let _ = writeln!(
                    s,
                    "  time to detection: {} ms after the stress run started",
                    info.ms
                );
                let _ = writeln!(s, "  detail:            {}", info.detail);
                if let Some(st) = &r.stats {
                    let _ = writeln!(s, "  counters:          {}", counters(st, spec.variant));
                }
                let _ = writeln!(
                    s,
                    "\ninterleaving (every CPU's last trace events in time order; {} = cpu {}, whose oracle fired):",
                    finding::MARK,
                    info.cpu
                );
                s.push_str(&finding::interleaving(&f.traces, Some(info.cpu), style));
                let _ = writeln!(
                    s,
                    "\ncaught: {} on cpu {} after {} ms (variant {}, seed {})",
                    info.kind,
                    info.cpu,
                    info.ms,
                    spec.variant,
                    seed::show(spec.seed)
                );
            }
        }
        Outcome::Clean if r.window_hits() == 0 => {
            let _ = writeln!(
                s,
                "verdict: INCONCLUSIVE — {label}: no oracle fired in {run}, but the race window never opened (0 window hits): this run proves nothing about the variant"
            );
            if let Some(st) = &r.stats {
                let _ = writeln!(s, "  counters: {}", counters(st, spec.variant));
            }
            let _ = writeln!(
                s,
                "  (too few forks meeting swap-ins: try fewer --cpus, more --seconds, or another --seed)"
            );
        }
        Outcome::Clean => {
            let _ = writeln!(s, "verdict: CLEAN — {label}: no oracle fired in {run}");
            if let Some(st) = &r.stats {
                let _ = writeln!(s, "  counters: {}", counters(st, spec.variant));
            }
            let _ = writeln!(
                s,
                "  the race window opened {} times ({})",
                r.window_hits(),
                r.variant.scenario().window_doc
            );
        }
        Outcome::Hang => {
            let _ = writeln!(s, "verdict: HANG — {label}");
            let _ = writeln!(s, "  {}", r.reason);
            if let Some(h) = &r.hang {
                match h.by {
                    HangBy::Watchdog | HangBy::Oracle => {}
                    HangBy::Timeout => {
                        let _ = writeln!(
                            s,
                            "  (the runner's timeout expired while the kernel still printed: its watchdog did not report)"
                        );
                    }
                    HangBy::SilentTimeout => {
                        let _ = writeln!(
                            s,
                            "  (the console went silent and the kernel's watchdog did not report: a wedged kernel, or a deadlock with interrupts off)"
                        );
                    }
                }
                for w in &h.waits {
                    let _ = writeln!(
                        s,
                        "  cpu{}: {} (no progress for {} ms)",
                        w.cpu, w.wait, w.stalled_ms
                    );
                }
            }
            if let Some(st) = &r.stats {
                let _ = writeln!(s, "  counters: {}", counters(st, spec.variant));
            }
            if let Some(Record::Hang { traces, .. }) = out.console.hang()
                && !traces.is_empty()
            {
                let _ = writeln!(
                    s,
                    "\ninterleaving (every CPU's last trace events in time order):"
                );
                s.push_str(&finding::interleaving(traces, None, style));
            }
        }
        Outcome::Infra => {
            let _ = writeln!(
                s,
                "verdict: ERROR — {label}: {} — a harness or kernel problem, not a finding about the variant",
                r.verdict
            );
            let _ = writeln!(s, "  {}", r.reason);
            s.push_str(&render::details(out, "  "));
        }
    }
    let _ = writeln!(
        s,
        "\nreplay (same seed and workload; on real CPUs the interleaving may differ):"
    );
    let _ = writeln!(s, "  {}", r.replay);
    let _ = writeln!(
        s,
        "exit status {} ({})",
        r.exit_status,
        match r.outcome {
            Outcome::Clean if r.exit_status == EXIT_INCONCLUSIVE => "inconclusive",
            Outcome::Clean => "clean",
            Outcome::Caught => "failure found",
            Outcome::Hang => "hang found",
            Outcome::Infra => "harness error",
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accel::AccelChoice;
    use crate::testkit::*;
    use crate::verdict::Exit;
    use std::time::Duration;
    use stress::FailureKind;
    use stress::scenarios::d15293;

    fn spec() -> StressSpec {
        StressSpec {
            accel_flag: Some(AccelChoice::Tcg),
            ..stress_spec()
        }
    }

    #[test]
    fn failure_report_has_what_a_developer_needs() {
        let out = outcome(
            vec![
                hello(),
                ready(),
                failure(d15293::BASELINE, 0x2a, FailureKind::Repopulated),
                done(false, 1300, Some(stats(3))),
            ],
            Exit::Status(35),
        );
        let r = BootResult::from_outcome(&spec(), &out, Duration::from_secs(2));
        let text = report(&spec(), &out, &r, Style::default());
        for needle in [
            "verdict: CAUGHT",
            "failure kind:      repopulated",
            "seed:              0x2a",
            "caught on:         cpu 2",
            "time to detection: 1234 ms",
            "split found pindex 3 repopulated",
            "getpages drops obj 7",
            "▶ cpu2",
            "cargo xtask stress --variant baseline --seed 0x2a --cpus 4 --seconds 5 --machine microvm --accel tcg",
            "exit status 1",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        // The event of the CPU that did not catch it is not marked.
        assert!(text.contains("    cpu0"), "{text}");
    }

    #[test]
    fn a_run_where_the_window_never_opened_is_inconclusive() {
        let out = outcome(
            vec![hello(), ready(), done(true, 5000, Some(stats(0)))],
            Exit::Status(33),
        );
        let r = BootResult::from_outcome(&spec(), &out, Duration::from_secs(6));
        let text = report(&spec(), &out, &r, Style::default());
        assert!(text.contains("verdict: INCONCLUSIVE"), "{text}");
        assert!(!text.contains("CLEAN"), "{text}");
        assert!(text.contains("proves nothing"), "{text}");
        assert!(text.contains("exit status 4 (inconclusive)"), "{text}");
        let out = outcome(
            vec![hello(), ready(), done(true, 5000, Some(stats(2)))],
            Exit::Status(33),
        );
        let r = BootResult::from_outcome(&spec(), &out, Duration::from_secs(6));
        let text = report(&spec(), &out, &r, Style::default());
        assert!(text.contains("verdict: CLEAN"), "{text}");
        assert!(text.contains("opened 2 times"), "{text}");
        assert!(text.contains("exit status 0 (clean)"), "{text}");
    }
}
