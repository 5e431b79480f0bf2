//! Combining the `compare --json` reports of the shards of one plan
//! (`compare --shard I/N`) into the report of the whole plan, exactly: the
//! shards must come from the same plan (variants, boots per variant,
//! seconds, CPUs, seed base, machine, accelerator, kernel) and together
//! cover it once; the boots are put back in plan order and the summaries
//! are computed again from them. Anything else is refused with one line.

use std::collections::HashMap;

use stress::Variant;

use crate::json::{CompareReport, SCHEMA};
use crate::matrix::{self, Shard};
use crate::stress_result::BootResult;
use crate::summary::summarize;

/// The plan a report belongs to, as one comparable value.
#[derive(Clone, Debug, PartialEq)]
struct PlanKey {
    variants: Vec<Variant>,
    boots_per_variant: u32,
    seconds: f64,
    cpus: u32,
    seed_base: u64,
    machine: crate::qemu::Machine,
    accel: crate::qemu::Accel,
    kernel_sha256: String,
}

impl PlanKey {
    fn of(r: &CompareReport) -> Self {
        PlanKey {
            variants: r.variants.iter().map(|s| s.variant).collect(),
            boots_per_variant: r.boots_per_variant,
            seconds: r.seconds,
            cpus: r.cpus,
            seed_base: r.seed_base,
            machine: r.machine,
            accel: r.accel,
            kernel_sha256: r.kernel_sha256.clone(),
        }
    }

    /// The first field in which two plans differ, in words.
    fn difference(&self, o: &PlanKey) -> Option<String> {
        let names = |v: &[Variant]| v.iter().map(|v| v.name()).collect::<Vec<_>>().join(",");
        let diff = |what: &str, a: String, b: String| Some(format!("{what} {a} vs {b}"));
        if self.variants != o.variants {
            return diff("variants", names(&self.variants), names(&o.variants));
        }
        if self.boots_per_variant != o.boots_per_variant {
            return diff(
                "boots per variant",
                self.boots_per_variant.to_string(),
                o.boots_per_variant.to_string(),
            );
        }
        if self.seconds != o.seconds {
            return diff("seconds", self.seconds.to_string(), o.seconds.to_string());
        }
        if self.cpus != o.cpus {
            return diff("cpus", self.cpus.to_string(), o.cpus.to_string());
        }
        if self.seed_base != o.seed_base {
            return diff(
                "seed base",
                crate::seed::show(self.seed_base),
                crate::seed::show(o.seed_base),
            );
        }
        if self.machine != o.machine {
            return diff("machine", self.machine.to_string(), o.machine.to_string());
        }
        if self.accel != o.accel {
            return diff("accelerator", self.accel.to_string(), o.accel.to_string());
        }
        if self.kernel_sha256 != o.kernel_sha256 {
            let short = |s: &str| s.chars().take(12).collect::<String>();
            return diff(
                "kernel sha256",
                short(&self.kernel_sha256),
                short(&o.kernel_sha256),
            );
        }
        None
    }
}

/// The plan fields of a report that `merge` uses, checked before any use
/// (the shard is checked when it is read, see [`Shard`]): what `compare`
/// itself accepts on its command line.
fn check_plan(k: &PlanKey) -> Result<(), String> {
    if !(1..=matrix::MAX_BOOTS).contains(&k.boots_per_variant) {
        return Err(format!(
            "boots_per_variant {} is not in 1..={}",
            k.boots_per_variant,
            matrix::MAX_BOOTS
        ));
    }
    if k.variants.is_empty() {
        return Err("the report names no variant".into());
    }
    if let Some(v) = k
        .variants
        .iter()
        .enumerate()
        .find(|(i, v)| k.variants[..*i].contains(v))
        .map(|(_, v)| v)
    {
        return Err(format!("variant {v} is listed twice"));
    }
    if !(1..=crate::qemu::MAX_CPUS).contains(&k.cpus) {
        return Err(format!(
            "cpus {} is not in 1..={}",
            k.cpus,
            crate::qemu::MAX_CPUS
        ));
    }
    if !(k.seconds.is_finite() && k.seconds > 0.0) {
        return Err(format!("seconds {} is not > 0", k.seconds));
    }
    Ok(())
}

/// Merges shard reports (name, report) into the whole plan's report; the
/// one-line reason when they are not the shards of one plan.
pub fn merge(inputs: &[(String, CompareReport)], command: String) -> Result<CompareReport, String> {
    let Some((first_name, first)) = inputs.first() else {
        return Err("nothing to merge".into());
    };
    if inputs.iter().any(|(_, r)| r.confident.is_some()) {
        return crate::merge_confident::merge(inputs, command);
    }
    let key = PlanKey::of(first);
    for (name, r) in inputs {
        if r.schema != SCHEMA {
            return Err(format!(
                "{name} has report schema {}, this runner writes {SCHEMA}",
                r.schema
            ));
        }
        check_plan(&PlanKey::of(r)).map_err(|e| format!("{name}: {e}"))?;
        if let Some(d) = PlanKey::of(r).difference(&key) {
            return Err(format!(
                "{name} and {first_name} are not shards of one plan: {d}"
            ));
        }
        if r.interrupted {
            return Err(format!(
                "{name} was interrupted ({} of {} boots finished): run its shard again",
                r.boots.len(),
                r.planned
            ));
        }
    }
    let shard = |r: &CompareReport| r.shard.unwrap_or(Shard { index: 1, count: 1 });
    let count = shard(first).count;
    let mut by_index: HashMap<u32, &str> = HashMap::new();
    for (name, r) in inputs {
        let s = shard(r);
        if s.count != count {
            return Err(format!(
                "{name} is shard {s} but {first_name} is shard {}: not one split of the plan",
                shard(first)
            ));
        }
        if let Some(other) = by_index.insert(s.index, name) {
            return Err(format!(
                "{other} and {name} are both shard {s}: they overlap"
            ));
        }
    }
    let plan = matrix::plan(&key.variants, key.boots_per_variant, key.seed_base);
    let cell: HashMap<(Variant, u64), usize> = plan
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.variant, c.seed), i))
        .collect();
    let mut slots: Vec<Option<(&str, &BootResult)>> = vec![None; plan.len()];
    for (name, r) in inputs {
        let s = shard(r);
        let want = s.select(&plan).len();
        for b in &r.boots {
            let id = format!("{}/{}", b.variant, crate::seed::show(b.seed));
            let Some(&i) = cell.get(&(b.variant, b.seed)) else {
                return Err(format!("{name}: boot {id} is not in the plan"));
            };
            if !s.holds(i) {
                return Err(format!(
                    "{name}: boot {id} belongs to shard {}/{count}, not {s}",
                    i % count as usize + 1
                ));
            }
            if let Some((other, _)) = slots[i] {
                return Err(format!(
                    "boot {id} is in both {other} and {name}: they overlap"
                ));
            }
            slots[i] = Some((name, b));
        }
        if r.boots.len() != want {
            return Err(format!(
                "{name} holds {} of the {want} boots of shard {s}",
                r.boots.len()
            ));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard(s) {} missing: the plan is not covered",
            missing.join(", ")
        ));
    }
    let boots: Vec<BootResult> = slots
        .into_iter()
        .flatten()
        .map(|(_, b)| b.clone())
        .collect();
    debug_assert_eq!(boots.len(), plan.len());
    Ok(CompareReport {
        schema: SCHEMA,
        command,
        scenario: first.scenario,
        machine: first.machine,
        accel: first.accel,
        accel_why: first.accel_why.clone(),
        cpus: first.cpus,
        seconds: first.seconds,
        boots_per_variant: first.boots_per_variant,
        seed_base: first.seed_base,
        jobs: inputs.iter().map(|(_, r)| r.jobs).max().unwrap_or(1),
        wall_ms: inputs.iter().map(|(_, r)| r.wall_ms).max().unwrap_or(0),
        variants: key.variants.iter().map(|v| summarize(*v, &boots)).collect(),
        boots,
        kernel_sha256: first.kernel_sha256.clone(),
        shard: None,
        planned: plan.len(),
        interrupted: false,
        signal: None,
        merged_from: inputs.iter().map(|(n, _)| n.clone()).collect(),
        confident: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::{Accel, Machine};
    use crate::stress_result::{FailureInfo, Outcome};
    use crate::testkit::result;
    use stress::FailureKind;
    use stress::scenarios::d15293;

    const VARIANTS: [Variant; 3] = [d15293::BASELINE, d15293::SWAP_CLIP, d15293::SWAP_PREALLOC];

    /// A fake boot: what happens depends only on (variant, seed).
    fn fake_boot(c: &matrix::Cell) -> BootResult {
        let h = c.seed.wrapping_mul(31) ^ u64::from(c.variant.index());
        let outcome = [
            Outcome::Caught,
            Outcome::Clean,
            Outcome::Hang,
            Outcome::Infra,
        ][(h % 4) as usize];
        let mut r = result(c.variant, outcome, h % 7);
        r.seed = c.seed;
        if outcome == Outcome::Caught {
            r.failure = Some(FailureInfo {
                kind: FailureKind::Repopulated,
                cpu: (h % 4) as u32,
                ms: 100 + h % 900,
                detail: format!("fake {h}"),
            });
        }
        r.elapsed_ms = 1000 + h % 500;
        r
    }

    /// The report of running `shard` (or all) of the plan with the fake boot.
    fn run(shard: Option<Shard>) -> CompareReport {
        let plan = matrix::plan(&VARIANTS, 5, 0x10);
        let cells: Vec<(usize, matrix::Cell)> = match shard {
            Some(s) => s.select(&plan),
            None => plan.iter().copied().enumerate().collect(),
        };
        let boots: Vec<BootResult> = cells.iter().map(|(_, c)| fake_boot(c)).collect();
        CompareReport {
            schema: SCHEMA,
            command: "cargo xtask compare".into(),
            scenario: stress::ScenarioId::DEFAULT,
            machine: Machine::Microvm,
            accel: Accel::Tcg,
            accel_why: "--accel tcg".into(),
            cpus: 4,
            seconds: 0.5,
            boots_per_variant: 5,
            seed_base: 0x10,
            jobs: 1,
            wall_ms: 100,
            variants: VARIANTS.iter().map(|v| summarize(*v, &boots)).collect(),
            planned: boots.len(),
            boots,
            kernel_sha256: "cd".repeat(32),
            shard,
            interrupted: false,
            signal: None,
            merged_from: Vec::new(),
            confident: None,
        }
    }

    fn shards(count: u32) -> Vec<(String, CompareReport)> {
        (1..=count)
            .map(|index| {
                let s = Shard { index, count };
                (format!("s{index}.json"), run(Some(s)))
            })
            .collect()
    }

    #[test]
    fn merging_the_shards_gives_exactly_the_single_run() {
        let whole = run(None);
        for count in [1, 2, 3, 4, 15] {
            let mut parts = shards(count);
            parts.reverse(); // any order
            let m = merge(&parts, "merge".into()).expect("merges");
            assert_eq!(m.boots, whole.boots, "{count} shards");
            assert_eq!(m.variants, whole.variants, "{count} shards");
            assert_eq!((m.planned, m.shard, m.interrupted), (15, None, false));
            assert_eq!(m.merged_from.len(), count as usize);
        }
        // A full run merges into itself.
        let m = merge(&[("all.json".into(), whole.clone())], "merge".into()).expect("merges");
        assert_eq!((m.boots, m.variants), (whole.boots, whole.variants));
    }

    #[test]
    fn fields_out_of_range_are_refused_before_use() {
        let err =
            |r: CompareReport| merge(&[("x.json".into(), r)], "m".into()).expect_err("refused");
        let mut r = run(None);
        r.boots_per_variant = u32::MAX;
        let e = err(r);
        assert!(
            e.contains("x.json: boots_per_variant 4294967295 is not in 1..=10000"),
            "{e}"
        );
        let mut r = run(None);
        r.boots_per_variant = 0;
        assert!(err(r).contains("boots_per_variant 0"));
        let mut r = run(None);
        r.variants.clear();
        assert!(err(r).contains("names no variant"));
        let mut r = run(None);
        let again = r.variants[0].clone();
        r.variants.push(again);
        assert!(err(r).contains("listed twice"));
        let mut r = run(None);
        r.cpus = 0;
        assert!(err(r).contains("cpus 0"));
        let mut r = run(None);
        r.seconds = -1.0;
        assert!(err(r).contains("seconds -1"));
        // A shard read from a file is checked when it is read.
        let mut v = serde_json::to_value(run(Some(Shard { index: 1, count: 2 }))).expect("json");
        for (index, count) in [(0, 2), (1, 0)] {
            v["shard"] = serde_json::json!({"index": index, "count": count});
            let e = serde_json::from_value::<CompareReport>(v.clone()).expect_err("bad shard");
            assert!(e.to_string().contains("is not a shard"), "{e}");
        }
    }

    #[test]
    fn overlapping_missing_and_mismatched_shards_are_refused() {
        let p = shards(3);
        let err = |v: Vec<(String, CompareReport)>| merge(&v, "m".into()).expect_err("refused");
        let e = err(vec![p[0].clone(), p[0].clone(), p[1].clone(), p[2].clone()]);
        assert!(e.contains("both shard 1/3") && e.contains("overlap"), "{e}");
        let e = err(vec![p[0].clone(), p[2].clone()]);
        assert!(e.contains("shard(s) 2/3 missing"), "{e}");
        let mut q = p.clone();
        q[1].1.cpus = 2;
        let e = err(q);
        assert!(e.contains("not shards of one plan: cpus 2 vs 4"), "{e}");
        let mut q = p.clone();
        q[2].1.seconds = 1.0;
        assert!(err(q).contains("seconds 1 vs 0.5"));
        let mut q = p.clone();
        q[1].1.kernel_sha256 = "ef".repeat(32);
        assert!(err(q).contains("kernel sha256"));
        let mut q = p.clone();
        q[0].1.variants.pop();
        assert!(err(q).contains("variants"));
        let mut q = p.clone();
        q[1].1.interrupted = true;
        assert!(err(q).contains("was interrupted"));
        let e = err(vec![
            p[0].clone(),
            ("t.json".into(), run(Some(Shard { index: 2, count: 2 }))),
        ]);
        assert!(e.contains("is shard 2/2 but"), "{e}");
        // A boot that is not in its shard, or lost.
        let mut q = p.clone();
        let stray = q[1].1.boots[0].clone();
        q[0].1.boots.push(stray);
        assert!(err(q).contains("belongs to shard 2/3, not 1/3"));
        let mut q = p.clone();
        q[2].1.boots.pop();
        assert!(err(q).contains("holds 4 of the 5 boots of shard 3/3"));
        let mut q = p;
        q[0].1.boots[0].seed = 0x99;
        assert!(err(q).contains("is not in the plan"));
    }
}
