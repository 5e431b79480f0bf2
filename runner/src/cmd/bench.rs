//! `cargo xtask bench boot`: how long a probe boot takes per (machine,
//! accelerator), as min/median/max of spawn→Ready and spawn→exit.
//! (`bench stress` is in [`super::bench_stress`].)

use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressStyle};

use super::Ctx;
use crate::accel;
use crate::boot;
use crate::cli::{BenchBootArgs, BenchCommand};
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

struct Row {
    machine: Machine,
    accel: Accel,
    ok: usize,
    tried: usize,
    ready: Option<Spread>,
    exit: Option<Spread>,
    note: String,
    broken: bool,
}

fn boot_bench(ctx: &Ctx, a: &BenchBootArgs) -> Result<u8> {
    let kernel = ctx.kernel()?;
    let qemu = ctx.qemu()?;
    let mut rows = Vec::new();
    let total = (a.machines.len() * a.accels.len()) as u64 * u64::from(a.boots);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} boots {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for &machine in &a.machines {
        for &accel in &a.accels {
            bar.set_message(format!("{machine}/{accel}"));
            let spec = accel::probe_spec(machine, a.cpus, accel, kernel.clone(), qemu.clone());
            let (mut ready, mut exit) = (Vec::new(), Vec::new());
            let mut failures: Vec<String> = Vec::new();
            for i in 0..a.boots {
                let out = boot::boot(&spec, &mut |_| {});
                bar.inc(1);
                if *out.verdict() != Verdict::Pass {
                    failures.push(format!("{}: {}", out.verdict(), out.judgement.reason));
                    if i == 0 {
                        bar.inc(u64::from(a.boots - 1));
                        break;
                    }
                    continue;
                }
                ready.extend(out.timings.ready.map(ms));
                exit.extend(out.timings.exit.map(ms));
            }
            let ok = ready.len();
            let tried = ok + failures.len();
            let (note, broken) = match (ok, failures.first()) {
                (0, Some(f)) => (format!("unavailable: {f}"), false),
                (_, Some(f)) => (
                    format!("{} boot(s) failed, first: {f}", failures.len()),
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
                ready: spread(ready),
                exit: spread(exit),
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
        "boots ok/tried",
        "spawn→Ready ms (min / median / max)",
        "spawn→exit ms (min / median / max)",
        "note",
    ]);
    for r in &rows {
        t.add_row([
            r.machine.to_string(),
            r.accel.to_string(),
            format!("{}/{}", r.ok, r.tried),
            cell(r.ready),
            cell(r.exit),
            crate::console::preview(&r.note),
        ]);
    }
    let printed = crate::out::stdout(&format!(
        "mode=probe, {} CPU(s), {} boot(s) per row\n{t}\n",
        a.cpus, a.boots
    ));
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
}
