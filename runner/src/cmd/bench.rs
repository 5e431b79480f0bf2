//! `cargo xtask bench boot`: how long a probe boot takes per (machine,
//! accelerator) against the floor — the same kernel and QEMU flags with
//! `mode=crash kind=early-exit`, which exits on entry — in alternating pairs:
//! min/median/max of spawn→Ready and spawn→exit, the median probe/floor
//! ratio, and where the probe's time goes (the kernel's `# boot timeline`).
//! (`bench stress` is in [`super::bench_stress`].)

use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};
use stress::proto::Record;

use super::Ctx;
use crate::accel;
use crate::boot;
use crate::cli::{BenchBootArgs, BenchCommand};
use crate::console::LineKind;
use crate::error::{EXIT_FAILURE, EXIT_OK, Result};
use crate::qemu::{Accel, Machine};
use crate::verdict::Verdict;

pub fn run(ctx: &Ctx, b: &BenchCommand) -> Result<u8> {
    match b {
        BenchCommand::Boot(a) => boot_bench(ctx, a),
        BenchCommand::Stress(a) => super::bench_stress::run(ctx, a),
    }
}

/// min, median, max.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

/// The spread of some millisecond values (`None` when there are none).
pub fn spread(mut v: Vec<f64>) -> Option<Spread> {
    v.sort_by(f64::total_cmp);
    Some(Spread {
        median: crate::summary::median_sorted(&v)?,
        min: v[0],
        max: v[v.len() - 1],
    })
}

fn cell(s: Option<Spread>) -> String {
    s.map_or("-".into(), |s| {
        format!("{:.1} / {:.1} / {:.1}", s.min, s.median, s.max)
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The kernel command line of the floor: the same kernel, exiting right
/// after it read its command line (before any record, ACPI or memory set-up).
pub const FLOOR_APPEND: &str = "mode=crash kind=early-exit";

/// What the boots that print the timeline add to the probe's command line
/// (the paired probes do without: printing it costs time).
pub const TIMELINE_APPEND: &str = "boot_timeline=1";

/// Prefix of the kernel's boot timeline diagnostic (after `# `).
const TIMELINE_PREFIX: &str = "boot timeline us:";

/// The phases of a `# boot timeline us: a=12 b=40 ...` line: (name,
/// microseconds from kernel entry to the end of the phase), in boot order.
pub fn parse_timeline(diag: &str) -> Option<Vec<(String, u64)>> {
    let rest = diag.trim_start().strip_prefix(TIMELINE_PREFIX)?;
    rest.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// One probe boot, cut into where its time went (ms): QEMU's start-up up to
/// kernel entry, each kernel phase, and from the end of the boot to QEMU's
/// exit (the mode, `Done`, QEMU's tear-down).
fn breakdown(out: &boot::BootOutcome, timeline: &[(String, u64)]) -> Option<Vec<(String, f64)>> {
    let ready_ns = out.console.records().find_map(|r| match r {
        Record::Ready { boot_ns, .. } => Some(*boot_ns),
        _ => None,
    })?;
    let entry = ms(out.timings.ready?) - ready_ns as f64 / 1e6;
    let exit = ms(out.timings.exit?);
    let mut parts = vec![("QEMU start → kernel entry".to_string(), entry)];
    let mut prev = 0u64;
    for (name, us) in timeline {
        parts.push((
            format!("kernel: {name}"),
            us.saturating_sub(prev) as f64 / 1e3,
        ));
        prev = *us;
    }
    parts.push((
        "boot end → QEMU exit".to_string(),
        exit - entry - prev as f64 / 1e3,
    ));
    Some(parts)
}

struct Row {
    machine: Machine,
    accel: Accel,
    ok: usize,
    tried: usize,
    ready: Option<Spread>,
    exit: Option<Spread>,
    floor: Option<Spread>,
    /// Median over the pairs of probe exit / floor exit.
    ratio: Option<f64>,
    /// Median ms per part of the probe boot, in boot order.
    parts: Vec<(String, f64)>,
    note: String,
    broken: bool,
}

/// What the paired boots of one (machine, accelerator) gave.
#[derive(Default)]
struct Samples {
    ready: Vec<f64>,
    exit: Vec<f64>,
    floor: Vec<f64>,
    ratios: Vec<f64>,
    parts: Vec<Vec<(String, f64)>>,
    failures: Vec<String>,
}

impl Samples {
    fn failed(&mut self, what: &str, out: &boot::BootOutcome) {
        self.failures.push(format!(
            "{what}: {}: {}",
            out.verdict(),
            out.judgement.reason
        ));
    }

    /// Median of each part over the boots whose timeline had the same
    /// phases as the first one.
    fn median_parts(&self) -> Vec<(String, f64)> {
        let Some(first) = self.parts.first() else {
            return Vec::new();
        };
        let same: Vec<&Vec<(String, f64)>> = self
            .parts
            .iter()
            .filter(|p| p.iter().map(|x| &x.0).eq(first.iter().map(|x| &x.0)))
            .collect();
        first
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                let v = same.iter().map(|p| p[i].1).collect();
                (name.clone(), spread(v).map_or(0.0, |s| s.median))
            })
            .collect()
    }
}

/// A probe boot that prints its timeline, cut into parts.
fn timeline_boot(spec: &boot::BootSpec) -> Option<Vec<(String, f64)>> {
    let mut timeline = None;
    let out = boot::boot(spec, &mut |line| {
        if let LineKind::Diag(text) = &line.kind
            && let Some(t) = parse_timeline(text)
        {
            timeline = Some(t);
        }
    });
    if *out.verdict() != Verdict::Pass {
        return None;
    }
    breakdown(&out, &timeline?)
}

/// `pairs` pairs of boots, a probe and a floor, alternating which goes
/// first so that a drift in the machine's load hits both alike; after each
/// pair, a probe that prints its timeline (for the breakdown only).
fn paired_boots(
    probe: &boot::BootSpec,
    floor: &boot::BootSpec,
    timed: &boot::BootSpec,
    pairs: u32,
    bar: &ProgressBar,
) -> Samples {
    let mut s = Samples::default();
    for i in 0..pairs {
        let (p, f) = if i % 2 == 0 {
            let p = boot::boot(probe, &mut |_| {});
            (p, boot::boot(floor, &mut |_| {}))
        } else {
            let f = boot::boot(floor, &mut |_| {});
            (boot::boot(probe, &mut |_| {}), f)
        };
        bar.inc(1);
        let probe_ok = *p.verdict() == Verdict::Pass;
        // The floor exits with the Pass code before any record: EarlyExit.
        let floor_ok = *f.verdict() == Verdict::EarlyExit;
        if !probe_ok {
            s.failed("probe", &p);
        }
        if !floor_ok {
            s.failed("floor", &f);
        }
        if !probe_ok || !floor_ok {
            if i == 0 {
                bar.inc(u64::from(pairs - 1));
                break;
            }
            continue;
        }
        s.ready.extend(p.timings.ready.map(ms));
        let (Some(pe), Some(fe)) = (p.timings.exit.map(ms), f.timings.exit.map(ms)) else {
            continue;
        };
        s.exit.push(pe);
        s.floor.push(fe);
        s.ratios.push(pe / fe);
        s.parts.extend(timeline_boot(timed));
    }
    s
}

fn boot_bench(ctx: &Ctx, a: &BenchBootArgs) -> Result<u8> {
    let kernel = ctx.kernel()?;
    let qemu = ctx.qemu()?;
    let mut rows = Vec::new();
    let total = (a.machines.len() * a.accels.len()) as u64 * u64::from(a.boots);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} pairs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for &machine in &a.machines {
        for &accel in &a.accels {
            bar.set_message(format!("{machine}/{accel}"));
            let probe = accel::probe_spec(machine, a.cpus, accel, kernel.clone(), qemu.clone());
            let floor = boot::BootSpec {
                append: FLOOR_APPEND.into(),
                ..probe.clone()
            };
            let timed = boot::BootSpec {
                append: format!("{} {TIMELINE_APPEND}", probe.append),
                ..probe.clone()
            };
            let s = paired_boots(&probe, &floor, &timed, a.boots, &bar);
            let ok = s.ratios.len();
            let tried = ok + s.failures.len();
            let (note, broken) = match (ok, s.failures.first()) {
                (0, Some(f)) => (format!("unavailable: {f}"), false),
                (_, Some(f)) => (
                    format!("{} boot(s) failed, first: {f}", s.failures.len()),
                    true,
                ),
                _ => (String::new(), false),
            };
            // Which CPU model the boots ran with (KVM may have needed
            // another than `max`, see boot::boot).
            let note = match (note.is_empty(), ok) {
                (_, 0) => note,
                (true, _) => format!("-cpu {}", boot::cpu_model(accel)),
                (false, _) => format!("-cpu {}; {note}", boot::cpu_model(accel)),
            };
            rows.push(Row {
                machine,
                accel,
                ok,
                tried,
                parts: s.median_parts(),
                ready: spread(s.ready),
                exit: spread(s.exit),
                floor: spread(s.floor),
                ratio: spread(s.ratios).map(|r| r.median),
                note,
                broken,
            });
        }
    }
    bar.finish_and_clear();
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header([
        "machine",
        "accel",
        "pairs ok/tried",
        "probe spawn→Ready ms (min / median / max)",
        "probe spawn→exit ms",
        "floor spawn→exit ms",
        "probe/floor (median of pairs)",
        "note",
    ]);
    for r in &rows {
        t.add_row([
            r.machine.to_string(),
            r.accel.to_string(),
            format!("{}/{}", r.ok, r.tried),
            cell(r.ready),
            cell(r.exit),
            cell(r.floor),
            r.ratio.map_or("-".into(), |x| format!("{x:.3}")),
            crate::console::preview(&r.note),
        ]);
    }
    let mut text = format!(
        "mode=probe vs the floor ({FLOOR_APPEND}: the same kernel and QEMU flags, exiting \
         on entry), {} CPU(s), {} alternating pair(s) per row",
        a.cpus, a.boots
    );
    text.push_str(&format!("\n{t}\n"));
    for r in rows.iter().filter(|r| !r.parts.is_empty()) {
        let mut b = Table::new();
        b.load_style(UTF8_FULL_CONDENSED)
            .set_header(["part of the probe boot", "median ms"]);
        for (name, v) in &r.parts {
            b.add_row([name.clone(), format!("{v:.2}")]);
        }
        text.push_str(&format!(
            "{}/{}: where the probe boot's time goes (medians over the extra \
             `{TIMELINE_APPEND}` boots; kernel phases from their `# boot timeline` line)\n",
            r.machine, r.accel
        ));
        text.push_str(&format!("{b}\n"));
    }
    let printed = crate::out::stdout(&text);
    // A failure: boots failed on an accelerator that works, or nothing booted.
    let code = if rows.iter().any(|r| r.broken) || rows.iter().all(|r| r.ok == 0) {
        EXIT_FAILURE
    } else {
        EXIT_OK
    };
    Ok(crate::out::exit_status(printed, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_and_even_counts() {
        assert_eq!(spread(vec![]), None);
        let s = spread(vec![3.0, 1.0, 2.0]).expect("some");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = spread(vec![4.0, 1.0, 2.0, 3.0]).expect("some");
        assert_eq!(s.median, 2.5);
    }

    #[test]
    fn timeline_lines_parse_and_others_do_not() {
        assert_eq!(
            parse_timeline(" boot timeline us: pvh=12 acpi=180"),
            Some(vec![("pvh".into(), 12), ("acpi".into(), 180)])
        );
        assert_eq!(parse_timeline("boot timeline us:"), Some(vec![]));
        assert_eq!(parse_timeline(" still here"), None);
        assert_eq!(parse_timeline(" boot timeline us: pvh=x"), None);
        assert_eq!(parse_timeline(" boot timeline us: pvh"), None);
    }
}
