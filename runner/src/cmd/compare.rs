//! `cargo xtask compare`: the variant × boot matrix on the same seeds,
//! several QEMUs at once, a progress bar, then one table row per variant
//! ([`crate::summary`]) and optionally JSON, an SVG plot and JUnit.
//!
//! Findings are results: the exit status is 0 when every boot ran, 3 when
//! some boot hit an infrastructure error (never counted as clean), 2 on bad
//! usage. In JUnit a case (one per boot) fails only on an infrastructure
//! error; what the boot found is in its system-out.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stress::Variant;

use super::Ctx;
use crate::accel::fmt_rate;
use crate::boot;
use crate::cli::{CompareArgs, default_jobs, host_cpus};
use crate::error::{EXIT_INFRA, EXIT_OK, Error, Result};
use crate::json::{self, CompareReport, SCHEMA};
use crate::matrix::{self, Cell};
use crate::reaper;
use crate::report::{self, CaseResult};
use crate::seed;
use crate::stress_result::{BootResult, Outcome};
use crate::stress_spec::{StressSpec, resolve_accel, secs_arg};
use crate::summary::{VariantSummary, summarize};

pub fn run(ctx: &Ctx, a: &CompareArgs) -> Result<u8> {
    let variants = &a.variants()?;
    let scenario = crate::adaptive::reference_of(variants).scenario();
    if a.until_confident {
        super::confident::check_cpus(scenario, a.boot.cpus).map_err(Error::usage)?;
    }
    for (flag, path) in [
        ("--json", &a.json),
        ("--plot", &a.plot),
        ("--junit", &a.junit),
    ] {
        if let Some(p) = path {
            json::ensure_writable(flag, p)?;
        }
    }
    // `--shard auto`: this job array task's shard, before any build or boot.
    let shard = crate::shard_env::resolve(a.shard, a.shards, |k| std::env::var(k).ok())
        .map_err(Error::usage)?;
    if let Some(d) = &a.trace_dir {
        crate::tracefiles::ensure_dir(d)?;
    }
    if a.until_confident {
        return super::confident::run(ctx, a, variants, shard);
    }
    if a.boot.cpus < scenario.verdict_cpus {
        // The fixed matrix only counts; say why its clean rows mean less.
        crate::note!(
            "note: {}'s failing variants were measured on {} or more vCPUs; with --cpus {} some \
             of them cannot fail, so a clean row here says little",
            scenario.name,
            scenario.verdict_cpus,
            a.boot.cpus
        );
    }
    let host = host_cpus();
    let jobs = a
        .jobs
        .map_or_else(|| default_jobs(host, a.boot.cpus), |j| j as usize);
    let kernel = ctx.kernel()?;
    let kernel_sha256 = crate::kernel::sha256(&kernel)?;
    let qemu = ctx.qemu()?;
    // From here on SIGINT/SIGTERM stops the matrix and keeps what finished.
    let _graceful = reaper::Graceful::new();
    let b = &a.boot;
    let resolved = resolve_accel(b, &kernel, &qemu);
    let threads = jobs * b.cpus as usize;
    if threads > host.max(b.cpus as usize) {
        crate::note!(
            "warning: {jobs} QEMUs × {} vCPUs = {threads} vCPU threads on {host} host CPUs: the vCPUs \
             take turns instead of racing, so fewer windows open and fewer failures are caught \
             (compare faults/s with a smaller --jobs)",
            b.cpus
        );
    }
    let plan = matrix::plan(variants, a.boots, a.seed_base);
    let cells: Vec<(usize, Cell)> = match shard {
        Some(s) => s.select(&plan),
        None => plan.iter().copied().enumerate().collect(),
    };
    let last_seed = a.seed_base.wrapping_add(u64::from(a.boots - 1));
    crate::note!(
        "compare: {} variant(s) × {} boot(s) = {} boots{} of {} s on {}/{}cpu/{}, {} at once; seeds {}..={} (--seed-base {})",
        variants.len(),
        a.boots,
        plan.len(),
        shard.map_or(String::new(), |s| format!(
            ", shard {s}: {} of them",
            cells.len()
        )),
        secs_arg(b.seconds),
        b.machine,
        b.cpus,
        resolved.accel,
        jobs,
        seed::show(a.seed_base),
        seed::show(last_seed),
        seed::show(a.seed_base)
    );
    let spec_of =
        |c: &Cell| StressSpec::from_args(b, c.variant, c.seed, resolved.accel, ctx.kernel.clone());
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        ProgressBar::with_draw_target(Some(cells.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} boots, {elapsed} (eta {eta}) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let total = cells.len();
    let t0 = Instant::now();
    let mut finished = 0usize;
    // What finished so far, checkpointed to --json after every boot: a
    // matrix that dies (even by SIGKILL) keeps what it measured.
    let mut so_far: Vec<Option<BootResult>> = vec![None; total];
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report =
        |boots: Vec<BootResult>, wall: Duration, signal: Option<i32>, done: bool| CompareReport {
            schema: SCHEMA,
            scenario: a.scenario,
            command: command.clone(),
            machine: b.machine,
            accel: resolved.accel,
            accel_why: resolved.why.clone(),
            cpus: b.cpus,
            seconds: b.seconds.as_secs_f64(),
            boots_per_variant: a.boots,
            seed_base: a.seed_base,
            jobs,
            wall_ms: wall.as_millis() as u64,
            variants: variants.iter().map(|v| summarize(*v, &boots)).collect(),
            boots,
            kernel_sha256: kernel_sha256.clone(),
            shard,
            planned: total,
            interrupted: !done,
            signal: signal.map(|s| reaper::signal_name(s).to_string()),
            merged_from: Vec::new(),
            confident: None,
        };
    let mut checkpoint_error = None;
    let results = matrix::run(
        &cells,
        jobs,
        |_, (_, c)| {
            let spec = spec_of(c);
            let t = Instant::now();
            let out = boot::boot(&spec.boot_spec(kernel.clone(), qemu.clone()), &mut |_| {});
            // A boot whose QEMU the interrupt killed (or never started) is
            // no result; one that ended by itself is kept.
            if out.killed_by_interrupt() {
                return None;
            }
            if let Some(d) = &a.trace_dir
                && let Some(f) = crate::tracefiles::Finding::of(&out)
            {
                let (json, svg) = crate::tracefiles::in_dir(d, c.variant, c.seed);
                if let Err(e) = f.write(Some(&json), Some(&svg)) {
                    crate::note!("warning: trace files of {}: {e:#}", json.display());
                }
            }
            Some(BootResult::from_outcome(&spec, &out, t.elapsed()))
        },
        |i, r| {
            finished += 1;
            let line = format!("[{finished}/{total}] {}", boot_line(r));
            if tty {
                bar.println(line);
            } else {
                crate::note!("{line}");
            }
            bar.inc(1);
            so_far[i] = Some(r.clone());
            if let Some(p) = &a.json
                && finished < total
            {
                let partial = report(
                    so_far.iter().flatten().cloned().collect(),
                    t0.elapsed(),
                    None,
                    false,
                );
                if let Err(e) = json::write_atomic(p, &partial) {
                    checkpoint_error.get_or_insert(e);
                }
            }
        },
        &|| reaper::interrupted().is_some(),
    );
    bar.finish_and_clear();
    let wall = t0.elapsed();
    let not_run: Vec<Cell> = cells
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|((_, c), _)| *c)
        .collect();
    let signal = reaper::interrupted();
    let all_ran = signal.is_none() && not_run.is_empty();
    let rep = report(
        results.into_iter().flatten().collect(),
        wall,
        signal,
        all_ran,
    );
    let (summaries, results) = (&rep.variants, &rep.boots);

    let mut text = String::new();
    if let Some(sig) = signal {
        text.push_str(&format!(
            "INTERRUPTED by {}: {} of {} boots finished; the table covers those\n",
            reaper::signal_name(sig),
            results.len(),
            total
        ));
    }
    text.push_str(&format!(
        "{} boots of {} s per variant on {}/{}cpu/{} ({}), seeds {}..={}{}; {} at once, {:.1} s wall\n",
        a.boots,
        secs_arg(b.seconds),
        b.machine,
        b.cpus,
        resolved.accel,
        resolved.why,
        seed::show(a.seed_base),
        seed::show(last_seed),
        shard.map_or(String::new(), |s| format!(", shard {s}")),
        jobs,
        wall.as_secs_f64()
    ));
    text.push_str(&format!("{}\n", table(summaries)));
    text.push_str(&notes(summaries, results));

    // The files first: whatever happens to the terminal (full, closed by
    // `| head`), the results the user asked to keep are written.
    let mut written = Vec::new();
    if let Some(p) = &a.json {
        if let Some(e) = checkpoint_error {
            crate::note!("warning: a checkpoint of {} failed: {e:#}", p.display());
        }
        json::write_atomic(p, &rep)?;
        written.push(format!("JSON written to {}", p.display()));
    }
    if let Some(p) = &a.plot {
        crate::plot::write(p, variants, results, b.seconds.as_secs_f64() * 1e3)?;
        written.push(format!("plot written to {}", p.display()));
    }
    if let Some(p) = &a.junit {
        let mut cases = junit_cases(results);
        if let Some(sig) = signal {
            cases.push(interrupted_case(sig, results.len(), total, &not_run));
        }
        report::write_junit(p, &cases)?;
        written.push(format!("JUnit XML written to {}", p.display()));
    }
    let printed = crate::out::stdout(&text);
    for w in written {
        crate::note!("{w}");
    }
    if let Some(code) = reaper::interrupt_exit_code() {
        return Ok(crate::out::exit_status(printed, code));
    }
    let code = if results.iter().any(|r| r.outcome == Outcome::Infra) {
        EXIT_INFRA
    } else {
        EXIT_OK
    };
    Ok(crate::out::exit_status(printed, code))
}

/// The JUnit case of an interrupted matrix: failed, naming what did not run.
pub fn interrupted_case(sig: i32, finished: usize, total: usize, not_run: &[Cell]) -> CaseResult {
    let names: Vec<String> = not_run
        .iter()
        .map(|c| {
            format!(
                "{}/{}/{}",
                c.variant.scenario_id(),
                c.variant,
                seed::show(c.seed)
            )
        })
        .collect();
    CaseResult {
        name: "compare/interrupted".into(),
        ok: false,
        message: format!(
            "interrupted by {}: {finished} of {total} boots finished",
            reaper::signal_name(sig)
        ),
        details: format!("not run: {}", names.join(", ")),
        time: Duration::ZERO,
    }
}

/// One line per finished boot.
pub fn boot_line(r: &BootResult) -> String {
    let what = match (r.outcome, &r.failure, &r.hang) {
        (Outcome::Caught, Some(f), _) => {
            format!("caught {} on cpu {} at {} ms", f.kind, f.cpu, f.ms)
        }
        (Outcome::Hang, _, Some(h)) => format!("hang ({} ms)", h.ms),
        (Outcome::Clean, _, _) => format!("clean, {} window hits", r.window_hits()),
        (Outcome::Infra, _, _) => format!(
            "ERROR {}: {}",
            r.verdict,
            crate::console::preview(&r.reason)
        ),
        (o, _, _) => o.to_string(),
    };
    format!("{} seed {}: {what}", r.variant, seed::show(r.seed))
}

fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or("-".into(), f)
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The cost column: its header and each row's cell. Rows of one set of
/// cost counters (one scenario) get `a/b/c` under a header naming them;
/// mixed rows get `name value, ...` under `costs`.
fn cost_column(rows: &[VariantSummary]) -> (String, Vec<String>) {
    let names = |s: &VariantSummary| -> Vec<&'static str> {
        s.variant
            .scenario()
            .costs
            .iter()
            .map(|c| c.name())
            .collect()
    };
    let value = |s: &VariantSummary, n: &str| s.costs.get(n).copied().unwrap_or(0);
    let shared = rows
        .first()
        .map(names)
        .filter(|first| rows.iter().all(|r| names(r) == *first));
    match shared {
        Some(ns) => (
            ns.join("/"),
            rows.iter()
                .map(|r| {
                    ns.iter()
                        .map(|n| value(r, n).to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .collect(),
        ),
        None => (
            "costs".into(),
            rows.iter()
                .map(|r| {
                    names(r)
                        .iter()
                        .map(|n| format!("{n} {}", value(r, n)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .collect(),
        ),
    }
}

/// The table: one row per variant.
pub fn table(rows: &[VariantSummary]) -> Table {
    let (cost_header, cost_cells) = cost_column(rows);
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header([
        "variant",
        "verdict",
        "boots",
        "failed",
        "rate [95% CI]",
        "failure kinds",
        "hangs",
        "infra",
        "median TTF",
        "window hits total/min",
        cost_header.as_str(),
        "faults/s",
        "forks/s",
    ]);
    for (s, costs) in rows.iter().zip(cost_cells) {
        let kinds = if s.failure_kinds.is_empty() {
            "-".to_string()
        } else {
            s.failure_kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.add_row([
            s.variant.to_string(),
            s.verdict.to_string(),
            s.boots.to_string(),
            s.failed_boots.to_string(),
            match (s.failure_rate, s.failure_rate_low, s.failure_rate_high) {
                (Some(r), Some(lo), Some(hi)) => format!("{} [{}–{}]", pct(r), pct(lo), pct(hi)),
                _ => "-".into(),
            },
            kinds,
            s.hangs.to_string(),
            s.infra.to_string(),
            opt(s.median_ttf_ms, |ms| format!("{ms:.0} ms")),
            format!(
                "{}/{}",
                s.window_hits,
                opt(s.window_hits_min, |m| m.to_string())
            ),
            costs,
            opt(s.faults_per_s, fmt_rate),
            opt(s.forks_per_s, |f| format!("{f:.1}")),
        ]);
    }
    t
}

/// Under the table: why each verdict, the first failure of every caught
/// variant with its replay command, and every infrastructure error.
pub fn notes(rows: &[VariantSummary], boots: &[BootResult]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&format!("  {}: {} — {}\n", r.variant, r.verdict, r.why));
        if let Some(b) = first_of(boots, r.variant, Outcome::Caught) {
            s.push_str(&format!(
                "      first failure: {}\n      replay: {}\n",
                b.reason, b.replay
            ));
        }
        if let Some(b) = first_of(boots, r.variant, Outcome::Hang) {
            s.push_str(&format!(
                "      first hang: {}\n      replay: {}\n",
                b.reason, b.replay
            ));
        }
    }
    let infra: Vec<&BootResult> = boots
        .iter()
        .filter(|b| b.outcome == Outcome::Infra)
        .collect();
    if !infra.is_empty() {
        s.push_str(&format!(
            "{} boot(s) hit an infrastructure error (not counted as clean):\n",
            infra.len()
        ));
        for b in infra {
            s.push_str(&format!(
                "  {} seed {}: {}: {}\n",
                b.variant,
                seed::show(b.seed),
                b.verdict,
                b.reason
            ));
        }
    }
    s
}

fn first_of(boots: &[BootResult], v: Variant, o: Outcome) -> Option<&BootResult> {
    boots.iter().find(|b| b.variant == v && b.outcome == o)
}

/// JUnit cases: one per boot, failed only on an infrastructure error.
pub fn junit_cases(boots: &[BootResult]) -> Vec<CaseResult> {
    boots
        .iter()
        .map(|b| {
            let ok = b.outcome != Outcome::Infra;
            CaseResult {
                name: format!("{}/{}/{}", b.scenario, b.variant, seed::show(b.seed)),
                ok,
                message: format!("{}; replay: {}", boot_line(b), b.replay),
                details: if ok {
                    String::new()
                } else {
                    format!("{}: {}\nreplay: {}", b.verdict, b.reason, b.replay)
                },
                time: Duration::from_millis(b.elapsed_ms),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress_result::FailureInfo;
    use crate::testkit::result;
    use stress::FailureKind;
    use stress::scenarios::{d15293, swapoff};

    fn boots() -> Vec<BootResult> {
        let mut c = result(d15293::BASELINE, Outcome::Caught, 1);
        c.failure = Some(FailureInfo {
            kind: FailureKind::Repopulated,
            cpu: 2,
            ms: 812,
            detail: "pindex 3".into(),
        });
        c.reason = "repopulated on cpu 2 after 812 ms: pindex 3".into();
        c.replay = "cargo xtask stress --variant baseline --seed 0x1".into();
        let mut i = result(d15293::SWAP_PREALLOC, Outcome::Infra, 0);
        i.seed = 2;
        i.verdict = "Panic".into();
        i.reason = "cpu 1: boom".into();
        vec![c, result(d15293::SWAP_PREALLOC, Outcome::Clean, 4), i]
    }

    #[test]
    fn junit_fails_only_on_infrastructure_errors() {
        let cases = junit_cases(&boots());
        assert_eq!(
            cases
                .iter()
                .map(|c| (c.name.as_str(), c.ok))
                .collect::<Vec<_>>(),
            vec![
                ("d15293/baseline/0x1", true),
                ("d15293/swap-prealloc/0x1", true),
                ("d15293/swap-prealloc/0x2", false)
            ]
        );
        assert!(
            cases[0]
                .message
                .contains("caught repopulated on cpu 2 at 812 ms")
        );
        assert!(cases[0].message.contains("replay: cargo xtask stress"));
        let xml = report::junit(&cases).to_string().expect("xml");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(
            xml.contains("<system-out>baseline seed 0x1: caught repopulated"),
            "{xml}"
        );
    }

    #[test]
    fn table_and_notes_show_verdicts_and_replays() {
        let b = boots();
        let rows = vec![
            summarize(d15293::BASELINE, &b),
            summarize(d15293::SWAP_PREALLOC, &b),
        ];
        let t = table(&rows).to_string();
        assert!(t.contains("caught") && t.contains("inconclusive"), "{t}");
        assert!(t.contains("100% [21%–100%]"), "{t}");
        assert!(t.contains("repopulated 1"), "{t}");
        assert!(t.contains("812 ms"), "{t}");
        let n = notes(&rows, &b);
        assert!(
            n.contains("replay: cargo xtask stress --variant baseline --seed 0x1"),
            "{n}"
        );
        assert!(n.contains("1 boot(s) hit an infrastructure error"), "{n}");
        assert!(
            n.contains("swap-prealloc seed 0x2: Panic: cpu 1: boom"),
            "{n}"
        );
    }

    #[test]
    fn the_cost_column_is_the_scenarios() {
        let b = boots();
        let d = [summarize(d15293::BASELINE, &b)];
        let t = table(&d).to_string();
        assert!(t.contains("wasted/discarded/leaked"), "{t}");
        // Two swapoff boots: its counters by name, summed; D15293's absent.
        let mut boots: Vec<BootResult> = (0..2)
            .map(|i| {
                let mut r = result(swapoff::PRE_R358024, Outcome::Clean, 5);
                let st = r.stats.as_mut().expect("stats");
                st.swapoffs = 3 + i;
                st.swapoff_blocks = 100;
                st.swapoff_pageins = 40;
                st.wasted = 7;
                r
            })
            .collect();
        let s = summarize(swapoff::PRE_R358024, &boots);
        assert_eq!(s.costs.get("swapoffs"), Some(&7));
        assert_eq!(s.costs.get("swapoff_pageins"), Some(&80));
        assert_eq!(s.costs.get("wasted"), None);
        assert_eq!(s.wasted, 14, "the old field stays");
        let t = table(std::slice::from_ref(&s)).to_string();
        assert!(t.contains("swapoffs/swapoff_blocks/swapoff_pageins"), "{t}");
        assert!(t.contains("7/200/80"), "{t}");
        assert!(!t.contains("wasted"), "{t}");
        // Rows of two scenarios: each row names its own counters.
        boots.extend(b);
        let rows = [
            summarize(d15293::BASELINE, &boots),
            summarize(swapoff::PRE_R358024, &boots),
        ];
        let t = table(&rows).to_string();
        assert!(t.contains("costs"), "{t}");
        assert!(t.contains("swapoffs 7, swapoff_blocks 200"), "{t}");
        assert!(t.contains("wasted 0, discarded 0"), "{t}");
        // JSON: the map, and the old fields; a document without `costs` reads.
        let mut v = serde_json::to_value(&s).expect("json");
        assert_eq!(v["costs"]["swapoff_blocks"], 200);
        assert_eq!(v["wasted"], 14);
        v.as_object_mut().expect("object").remove("costs");
        let old: VariantSummary = serde_json::from_value(v).expect("an older document");
        assert!(old.costs.is_empty());
    }
}
