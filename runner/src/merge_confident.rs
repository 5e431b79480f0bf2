//! Combining the `compare --until-confident --shard I/N` reports of one
//! adaptive run into the whole run's report: the boots are pooled and every
//! decision is computed again from them ([`crate::adaptive::judge`]).
//! Anything that is not the shards of one run is refused with one line.

use std::collections::HashMap;
use std::time::Duration;

use stress::Variant;

use crate::adaptive::{Settings, decided_rows, judge};
use crate::json::{CompareReport, SCHEMA};
use crate::matrix::Shard;
use crate::stress_result::BootResult;
use crate::summary::summarize;

/// Merges the reports of `compare --until-confident --shard I/N` runs:
/// the same settings, distinct shards covering 1..=N, none interrupted, no
/// boot twice; the boots are pooled and every decision is computed again
/// from them (the reference pooled too). The one-line reason otherwise.
pub fn merge(inputs: &[(String, CompareReport)], command: String) -> Result<CompareReport, String> {
    let Some((first_name, first)) = inputs.first() else {
        return Err("nothing to merge".into());
    };
    let settings = |r: &CompareReport| {
        r.confident.as_ref().map(|c| {
            (
                r.variants.iter().map(|s| s.variant).collect::<Vec<_>>(),
                c.reference,
                c.factor,
                c.reference_failures,
                r.seconds,
                r.cpus,
                r.seed_base,
                r.machine,
                r.accel,
                r.kernel_sha256.clone(),
            )
        })
    };
    let key = settings(first);
    let mut shards = HashMap::new();
    let mut seen = HashMap::new();
    let count = first.shard.map_or(1, |s| s.count);
    for (name, r) in inputs {
        if r.schema != SCHEMA {
            return Err(format!(
                "{name} has report schema {}, this runner writes {SCHEMA}",
                r.schema
            ));
        }
        match settings(r) {
            None => {
                return Err(format!(
                    "{name} is a fixed-matrix report and {first_name} an --until-confident one: not one run"
                ));
            }
            k if k != key => {
                return Err(format!(
                    "{name} and {first_name} differ in variants, reference, factor, seconds, CPUs, seed base, machine, accelerator or kernel: not one run"
                ));
            }
            _ => {}
        }
        if r.interrupted {
            return Err(format!("{name} was interrupted: run its shard again"));
        }
        let s = r.shard.unwrap_or(Shard { index: 1, count: 1 });
        if s.count != count {
            return Err(format!(
                "{name} is shard {s} but {first_name} is one of {count}: not one split"
            ));
        }
        if let Some(other) = shards.insert(s.index, name) {
            return Err(format!(
                "{other} and {name} are both shard {s}: they overlap"
            ));
        }
        for b in &r.boots {
            if let Some(other) = seen.insert((b.variant, b.seed), name) {
                return Err(format!(
                    "boot {}/{} is in both {other} and {name}: they overlap",
                    b.variant,
                    crate::seed::show(b.seed)
                ));
            }
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !shards.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!("shard(s) {} missing", missing.join(", ")));
    }
    let boots: Vec<BootResult> = inputs
        .iter()
        .flat_map(|(_, r)| r.boots.iter().cloned())
        .collect();
    let c = first
        .confident
        .as_ref()
        .ok_or("not an --until-confident report")?;
    let variants: Vec<Variant> = first.variants.iter().map(|s| s.variant).collect();
    let s = Settings {
        variants: variants.clone(),
        reference: c.reference,
        factor: c.factor,
        budget: Duration::from_secs_f64(c.budget_s),
        variant_budget: c.variant_budget_s.map(Duration::from_secs_f64),
        reference_failures: c.reference_failures,
        seed_base: first.seed_base,
        shard: None,
        jobs: 1,
    };
    let confident = judge(&s, &boots);
    let mut rows: Vec<_> = variants.iter().map(|v| summarize(*v, &boots)).collect();
    decided_rows(&mut rows, &confident);
    Ok(CompareReport {
        command,
        jobs: inputs.iter().map(|(_, r)| r.jobs).max().unwrap_or(1),
        wall_ms: inputs.iter().map(|(_, r)| r.wall_ms).max().unwrap_or(0),
        variants: rows,
        planned: boots.len(),
        confident: Some(confident),
        boots,
        shard: None,
        merged_from: inputs.iter().map(|(n, _)| n.clone()).collect(),
        ..first.clone()
    })
}
