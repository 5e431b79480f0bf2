//! `cargo xtask compare --until-confident`: the adaptive run
//! ([`crate::adaptive`]) under QEMU, one line per finished boot, then the
//! table and one claim per variant; JSON (with the `confident` part),
//! JUnit (a case per boot and one per decision) and the plot (decisions
//! under the columns) carry the decisions.
//!
//! Exit status as `compare`: 0 every boot ran, 3 some boot hit an
//! infrastructure error, 130/143 interrupted.

use std::time::Duration;

use stress::Variant;
use stress::scenarios::Scenario;

use super::Ctx;
use super::compare::{boot_line, junit_cases, table};
use crate::adaptive::{self, Confident, Qemu, Settings};
use crate::cli::{CompareArgs, default_jobs, host_cpus};
use crate::confidence::Decision;
use crate::error::{EXIT_INFRA, EXIT_OK, Result};
use crate::json::{self, CompareReport, SCHEMA};
use crate::matrix::Shard;
use crate::reaper;
use crate::report::{self, CaseResult};
use crate::seed;
use crate::stress_result::{BootResult, Outcome};
use crate::stress_spec::{StressSpec, resolve_accel, secs_arg};
use crate::summary::{VariantSummary, summarize};

/// Refuses an adaptive run on fewer vCPUs than the scenario's verdicts
/// were measured on ([`stress::scenarios::Scenario::verdict_cpus`]): there
/// a broken variant can collect clean window hits.
pub fn check_cpus(scenario: &Scenario, cpus: u32) -> Result<(), String> {
    if cpus >= scenario.verdict_cpus {
        return Ok(());
    }
    Err(format!(
        "compare --until-confident: {} is decided on {} or more vCPUs, not --cpus {cpus}: with fewer \
         the race window opens without the race's other preconditions and a failing variant can \
         pass as clean (use the fixed matrix, without --until-confident, to look at fewer)",
        scenario.name, scenario.verdict_cpus
    ))
}

/// The adaptive run of `compare` (its caller checked the options, the
/// output paths and resolved the shard).
pub fn run(ctx: &Ctx, a: &CompareArgs, variants: &[Variant], shard: Option<Shard>) -> Result<u8> {
    let mut variants = variants.to_vec();
    let reference = adaptive::reference_of(&variants);
    if !variants.contains(&reference) {
        crate::note!(
            "note: adding {reference}, the reference every clean claim is measured against"
        );
        variants.insert(0, reference);
    }
    let host = host_cpus();
    let b = &a.boot;
    let jobs = a
        .jobs
        .map_or_else(|| default_jobs(host, b.cpus), |j| j as usize);
    let kernel = ctx.kernel()?;
    let kernel_sha256 = crate::kernel::sha256(&kernel)?;
    let qemu = ctx.qemu()?;
    let _graceful = reaper::Graceful::new();
    let resolved = resolve_accel(b, &kernel, &qemu);
    let s = Settings {
        variants: variants.clone(),
        reference,
        factor: a.factor,
        budget: a.budget,
        variant_budget: a.variant_budget,
        reference_failures: adaptive::REFERENCE_FAILURES,
        seed_base: a.seed_base,
        shard,
        jobs,
    };
    eprintln!(
        "compare --until-confident: {} variant(s) on {}/{}cpu/{}, boots of up to {} s, {jobs} at once, \
         steer {}; reference {reference} until {} failures; clean = ≥ {}× below it per window hit (95%); \
         budget {} s{}; seeds from {}{}",
        variants.len(),
        b.machine,
        b.cpus,
        resolved.accel,
        secs_arg(b.seconds),
        if b.steer.on() { "on" } else { "off" },
        s.reference_failures,
        a.factor,
        secs_arg(a.budget),
        a.variant_budget.map_or(String::new(), |d| format!(
            ", {} s per variant",
            secs_arg(d)
        )),
        seed::show(a.seed_base),
        shard.map_or(String::new(), |s| format!(", shard {s}")),
    );
    let booter = Qemu {
        spec: StressSpec::from_args(
            b,
            reference,
            a.seed_base,
            resolved.accel,
            ctx.kernel.clone(),
        ),
        kernel,
        qemu,
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = |boots: Vec<BootResult>, wall: Duration, signal: Option<i32>, done: bool| {
        let confident = adaptive::judge(&s, &boots);
        let mut summaries: Vec<VariantSummary> =
            variants.iter().map(|v| summarize(*v, &boots)).collect();
        adaptive::decided_rows(&mut summaries, &confident);
        CompareReport {
            schema: SCHEMA,
            command: command.clone(),
            scenario: reference.scenario_id(),
            machine: b.machine,
            accel: resolved.accel,
            accel_why: resolved.why.clone(),
            cpus: b.cpus,
            seconds: b.seconds.as_secs_f64(),
            boots_per_variant: 0,
            seed_base: a.seed_base,
            jobs,
            wall_ms: wall.as_millis() as u64,
            variants: summaries,
            planned: boots.len(),
            boots,
            kernel_sha256: kernel_sha256.clone(),
            shard,
            interrupted: !done,
            signal: signal.map(|s| reaper::signal_name(s).to_string()),
            merged_from: Vec::new(),
            confident: Some(confident),
        }
    };
    let t0 = std::time::Instant::now();
    let mut so_far: Vec<BootResult> = Vec::new();
    let mut checkpoint_error = None;
    let run = adaptive::run(
        &s,
        &booter,
        &mut |r| {
            so_far.push(r.clone());
            let ended = r
                .ended
                .map_or(String::new(), |e| format!(" (ended early: {})", e.name()));
            eprintln!(
                "[{} {:.1} s] {}{ended}",
                so_far.len(),
                t0.elapsed().as_secs_f64(),
                boot_line(r)
            );
            if let Some(p) = &a.json
                && let Err(e) =
                    json::write_atomic(p, &report(so_far.clone(), t0.elapsed(), None, false))
            {
                checkpoint_error.get_or_insert(e);
            }
        },
        &|| reaper::interrupted().is_some(),
    );
    let signal = reaper::interrupted();
    let rep = report(run.boots, run.wall, signal, signal.is_none());
    let confident = rep
        .confident
        .clone()
        .unwrap_or_else(|| adaptive::judge(&s, &[]));
    if let Some(sig) = signal {
        println!(
            "INTERRUPTED by {}: {} boots finished; the decisions cover those",
            reaper::signal_name(sig),
            rep.boots.len()
        );
    }
    println!(
        "until confident at {}×: {} boots on {}/{}cpu/{} ({}), {:.1} s wall{}",
        a.factor,
        rep.boots.len(),
        b.machine,
        b.cpus,
        resolved.accel,
        resolved.why,
        run.wall.as_secs_f64(),
        if run.wall >= a.budget {
            " (budget spent)"
        } else {
            ""
        }
    );
    println!("{}", table(&rep.variants));
    print!("{}", claims(&confident, &rep.boots));
    if let Some(p) = &a.json {
        if let Some(e) = checkpoint_error {
            eprintln!("warning: a checkpoint of {} failed: {e:#}", p.display());
        }
        json::write_atomic(p, &rep)?;
        eprintln!("JSON written to {}", p.display());
    }
    if let Some(p) = &a.plot {
        let labels: Vec<String> = confident
            .decisions
            .iter()
            .map(|d| format!("decided {}", d.claim.decision))
            .collect();
        crate::plot::write_labelled(
            p,
            &variants,
            &labels,
            &rep.boots,
            b.seconds.as_secs_f64() * 1e3,
        )?;
        eprintln!("plot written to {}", p.display());
    }
    if let Some(p) = &a.junit {
        let mut cases = junit_cases(&rep.boots);
        cases.extend(decision_cases(&confident));
        report::write_junit(p, &cases)?;
        eprintln!("JUnit XML written to {}", p.display());
    }
    if let Some(code) = reaper::interrupt_exit_code() {
        return Ok(code);
    }
    Ok(if rep.boots.iter().any(|r| r.outcome == Outcome::Infra) {
        EXIT_INFRA
    } else {
        EXIT_OK
    })
}

/// One claim per variant, the first failure's replay of a caught one, and
/// every infrastructure error.
pub fn claims(c: &Confident, boots: &[BootResult]) -> String {
    let mut s = String::new();
    for d in &c.decisions {
        s.push_str(&format!(
            "  {}: {} [{} boot(s), {:.1} s]\n",
            d.variant,
            d.claim.text,
            d.boots,
            d.boot_ms as f64 / 1e3
        ));
        if d.claim.decision == Decision::Caught
            && let Some(b) = first_caught(boots, d.variant)
        {
            s.push_str(&format!(
                "      first failure: {}\n      replay: {}\n",
                b.reason, b.replay
            ));
        }
    }
    for b in boots.iter().filter(|b| b.outcome == Outcome::Infra) {
        s.push_str(&format!(
            "  infrastructure error (not counted): {} seed {}: {}: {}\n",
            b.variant,
            seed::show(b.seed),
            b.verdict,
            b.reason
        ));
    }
    s
}

fn first_caught(boots: &[BootResult], v: Variant) -> Option<&BootResult> {
    boots
        .iter()
        .find(|b| b.variant == v && b.outcome == Outcome::Caught)
}

/// JUnit cases of the decisions: `decision/<variant>`, the claim as the
/// message. A decision is a result, never a test failure.
pub fn decision_cases(c: &Confident) -> Vec<CaseResult> {
    c.decisions
        .iter()
        .map(|d| CaseResult {
            name: format!("decision/{}", d.variant),
            ok: true,
            message: d.claim.text.clone(),
            details: String::new(),
            time: Duration::from_millis(d.boot_ms),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::VariantVerdict;
    use crate::testkit::result;

    /// Verdicts only on as many vCPUs as the scenario's were measured on:
    /// D15293 on 2 called swap-clip clean.
    #[test]
    fn too_few_cpus_for_a_verdict_are_refused() {
        use stress::scenarios::{collapse, d15293};
        let v = d15293::SWAP_CLIP.scenario();
        for cpus in [1, 2, 3] {
            let e = check_cpus(v, cpus).unwrap_err();
            assert!(e.contains("d15293 is decided on 4 or more vCPUs"), "{e}");
            assert!(e.contains(&format!("--cpus {cpus}")), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert_eq!(check_cpus(v, 4), Ok(()));
        assert_eq!(check_cpus(v, 8), Ok(()));
        assert!(check_cpus(collapse::D22908.scenario(), 2).is_err());
    }

    #[test]
    fn claims_and_junit_carry_the_decisions() {
        let mut boots = Vec::new();
        for _ in 0..10 {
            let mut c = result(stress::scenarios::d15293::BASELINE, Outcome::Caught, 10);
            c.reason = "repopulated on cpu 2".into();
            c.replay = "cargo xtask stress --variant baseline --seed 0x1".into();
            boots.push(c);
        }
        boots.push(result(
            stress::scenarios::d15293::SWAP_PREALLOC,
            Outcome::Clean,
            50_000,
        ));
        boots.push(result(
            stress::scenarios::d15293::SPLIT_SKIP,
            Outcome::Clean,
            10,
        ));
        let s = Settings {
            variants: vec![
                stress::scenarios::d15293::BASELINE,
                stress::scenarios::d15293::SWAP_PREALLOC,
                stress::scenarios::d15293::SPLIT_SKIP,
            ],
            reference: stress::scenarios::d15293::BASELINE,
            factor: 100.0,
            budget: Duration::from_secs(30),
            variant_budget: None,
            reference_failures: 10,
            seed_base: 1,
            shard: None,
            jobs: 1,
        };
        let c = adaptive::judge(&s, &boots);
        let mut rows: Vec<VariantSummary> =
            s.variants.iter().map(|v| summarize(*v, &boots)).collect();
        // The fixed matrix would call split-skip clean (its one boot ran
        // clean and opened the window); the adaptive decision does not.
        assert_eq!(rows[2].verdict, VariantVerdict::Clean);
        adaptive::decided_rows(&mut rows, &c);
        assert_eq!(rows[2].verdict, VariantVerdict::Inconclusive);
        assert_eq!(rows[1].verdict, VariantVerdict::Clean);
        assert!(
            rows[2].why.starts_with("inconclusive: 0 failures in 10"),
            "{}",
            rows[2].why
        );
        let text = claims(&c, &boots);
        assert!(
            text.contains("baseline: caught: 10 failure(s) in 100 window hits"),
            "{text}"
        );
        assert!(
            text.contains("replay: cargo xtask stress --variant baseline"),
            "{text}"
        );
        assert!(
            text.contains("swap-prealloc: clean: 0 failures in 50,000 window hits"),
            "{text}"
        );
        assert!(text.contains("split-skip: inconclusive"), "{text}");
        let cases = decision_cases(&c);
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[1].name, "decision/swap-prealloc");
        assert!(
            cases[1].message.starts_with("clean:"),
            "{}",
            cases[1].message
        );
        let xml = report::junit(&cases).to_string().expect("xml");
        assert!(xml.contains("decision/split-skip"), "{xml}");
    }
}
