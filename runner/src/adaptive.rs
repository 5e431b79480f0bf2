//! `compare --until-confident`: boot every variant until it is decided
//! ([`crate::confidence`] holds the rule), several QEMUs at once.
//!
//! - The **reference** (the scenario's unfixed variant, [`reference_of`]) is
//!   booted first and again until it has [`REFERENCE_FAILURES`] failures:
//!   each of its boots ends at a failure, and failures / window hits is its
//!   per-hit failure rate. It is then *settled*: no more reference boots,
//!   and its 95% lower bound is fixed for the rest of the run.
//! - Every other variant is booted until it is **caught** (its first oracle
//!   failure), **hangs**, or — once the reference is settled — its window
//!   hits without a failure make it **clean at F×**.
//! - The runner ends a boot as soon as its variant is decided: QEMU is
//!   killed and the boot counts the hits of its last `Progress` record
//!   ([`BootResult::ended_early`]; never a failure or a hang).
//! - When `--budget` (total wall time) or `--variant-budget` (boot time of
//!   one variant) runs out, the undecided are **inconclusive**.
//!
//! The decisions in the report are computed again from the boots alone
//! ([`judge`]), as `merge` does for shards: the live loop only decides
//! when to stop, never what to claim.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stress::Variant;
use stress::proto::Record;

use crate::boot;
use crate::confidence::{self, Claim, Decision, Evidence, Reference};
use crate::console::LineKind;
use crate::matrix::Shard;
use crate::stress_result::{BootResult, Ended, Outcome};
use crate::stress_spec::StressSpec;
use crate::summary::{VariantSummary, VariantVerdict};

/// Failures of the reference before it is settled: with 30, its 95% lower
/// bound is about 0.73 of its measured rate (with 10 about half, with 1 a
/// twentieth), and every clean verdict needs hits in inverse proportion to
/// that bound. The reference's boots are short (each ends at a failure):
/// on D15293, 30 took 6 s and cut the hits a fix needs from ~16,000 to
/// ~8,500 against 10.
pub const REFERENCE_FAILURES: u64 = 30;

/// Infrastructure errors after which a variant gets no more boots.
pub const MAX_INFRA: u64 = 3;

/// The reference of a comparison: the unfixed code, i.e. the first variant
/// of the scenario the compared variants belong to.
pub fn reference_of(variants: &[Variant]) -> Variant {
    let scenario = variants
        .first()
        .map_or(stress::scenarios::ScenarioId::DEFAULT, |v| v.scenario_id());
    Variant::new(scenario, 0)
}

/// What the adaptive run needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The variants, the reference among them.
    pub variants: Vec<Variant>,
    pub reference: Variant,
    pub factor: f64,
    /// Wall time of the whole run.
    pub budget: Duration,
    /// Boot time one variant may use.
    pub variant_budget: Option<Duration>,
    /// Failures of the reference before it is settled.
    pub reference_failures: u64,
    /// Boot k of a variant uses seed `seed_base + offset + k·stride`
    /// (`--shard I/N`: offset I−1, stride N).
    pub seed_base: u64,
    pub shard: Option<Shard>,
    pub jobs: usize,
}

impl Settings {
    /// The seed of boot `k` of a variant.
    pub fn seed(&self, k: u64) -> u64 {
        let (offset, stride) = self
            .shard
            .map_or((0, 1), |s| (u64::from(s.index - 1), u64::from(s.count)));
        self.seed_base
            .wrapping_add(offset)
            .wrapping_add(k.wrapping_mul(stride))
    }
}

/// The decisions of an adaptive run: the `confident` part of
/// `compare --json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confident {
    pub factor: f64,
    pub budget_s: f64,
    pub variant_budget_s: Option<f64>,
    pub reference: Variant,
    /// Failures of the reference the run waited for.
    pub reference_failures: u64,
    /// The reference as measured (its failures and window hits).
    pub measured: Option<Reference>,
    /// One per variant, in the order asked.
    pub decisions: Vec<VariantDecision>,
}

/// One variant's decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantDecision {
    pub variant: Variant,
    /// Boots it took.
    pub boots: u64,
    /// Wall time of those boots.
    pub boot_ms: u64,
    #[serde(flatten)]
    pub claim: Claim,
}

/// A variant's evidence: its boots in counts.
pub fn evidence(variant: Variant, boots: &[BootResult]) -> Evidence {
    let mut ev = Evidence::default();
    for b in boots.iter().filter(|b| b.variant == variant) {
        match b.outcome {
            Outcome::Infra => ev.infra += 1,
            o => {
                ev.ran += 1;
                ev.hits += b.window_hits();
                ev.failures += u64::from(o == Outcome::Caught);
                ev.hangs += u64::from(o == Outcome::Hang);
            }
        }
    }
    ev
}

/// The reference as measured by `boots`.
pub fn measure_reference(reference: Variant, boots: &[BootResult]) -> Reference {
    let ev = evidence(reference, boots);
    Reference {
        name: reference.name().into(),
        failures: ev.failures,
        hits: ev.hits,
    }
}

/// Every variant's decision, from the boots alone.
pub fn judge(s: &Settings, boots: &[BootResult]) -> Confident {
    let r = measure_reference(s.reference, boots);
    let decisions = s
        .variants
        .iter()
        .map(|&v| {
            let mine = boots.iter().filter(|b| b.variant == v);
            VariantDecision {
                variant: v,
                boots: mine.clone().count() as u64,
                boot_ms: mine.map(|b| b.elapsed_ms).sum(),
                claim: confidence::decide(&evidence(v, boots), Some(&r), s.factor),
            }
        })
        .collect();
    Confident {
        factor: s.factor,
        budget_s: s.budget.as_secs_f64(),
        variant_budget_s: s.variant_budget.map(|d| d.as_secs_f64()),
        reference: s.reference,
        reference_failures: s.reference_failures,
        measured: Some(r),
        decisions,
    }
}

/// The table rows of an adaptive run say its decisions (not the fixed
/// matrix's verdicts): verdict and why from each variant's claim.
pub fn decided_rows(rows: &mut [VariantSummary], c: &Confident) {
    for r in rows.iter_mut().filter(|r| r.boots > 0) {
        if let Some(d) = c.decisions.iter().find(|d| d.variant == r.variant) {
            r.verdict = match d.claim.decision {
                Decision::Caught => VariantVerdict::Caught,
                Decision::Hangs => VariantVerdict::Hangs,
                Decision::Clean => VariantVerdict::Clean,
                Decision::Inconclusive => VariantVerdict::Inconclusive,
            };
            r.why = d.claim.text.clone();
        }
    }
}

/// Boots one variant/seed: `progress` gets the window hits of every
/// `Progress` record, `stop` is asked as the boot goes (`Some`: end it now,
/// and why). `None` when an interrupt killed the boot (no result).
pub trait Booter: Sync {
    fn boot(
        &self,
        variant: Variant,
        seed: u64,
        progress: &mut dyn FnMut(u64),
        stop: &dyn Fn() -> Option<Ended>,
    ) -> Option<BootResult>;
}

/// The real booter: a `mode=stress` boot under QEMU.
pub struct Qemu {
    /// The spec of every boot (its variant and seed are replaced).
    pub spec: StressSpec,
    pub kernel: PathBuf,
    pub qemu: PathBuf,
}

impl Booter for Qemu {
    fn boot(
        &self,
        variant: Variant,
        seed: u64,
        progress: &mut dyn FnMut(u64),
        stop: &dyn Fn() -> Option<Ended>,
    ) -> Option<BootResult> {
        let spec = StressSpec {
            variant,
            seed,
            ..self.spec.clone()
        };
        let stopped = Cell::new(None);
        let t = Instant::now();
        let out = boot::boot_until(
            &spec.boot_spec(self.kernel.clone(), self.qemu.clone()),
            &mut |l| {
                if let LineKind::Record(f) = &l.kind
                    && let Record::Progress { stats, .. } = &f.rec
                {
                    progress(stats.window_hits);
                }
            },
            &|| {
                let why = stop();
                if why.is_some() {
                    stopped.set(why);
                }
                why.is_some()
            },
        );
        if out.killed_by_interrupt() {
            return None;
        }
        Some(match stopped.get() {
            Some(why) => BootResult::ended_early(&spec, &out, t.elapsed(), why),
            None => BootResult::from_outcome(&spec, &out, t.elapsed()),
        })
    }
}

/// One variant's state in the live loop.
#[derive(Default)]
struct Per {
    started: u64,
    /// Evidence of the finished boots.
    done_ev: Evidence,
    /// Boot time of the finished boots.
    used: Duration,
    /// Boots running: id → (window hits so far, start).
    running: HashMap<u64, (u64, Instant)>,
    /// No more boots; the running ones end, for this reason.
    done: Option<Ended>,
}

impl Per {
    fn evidence(&self) -> Evidence {
        let mut ev = self.done_ev;
        ev.hits += self.running.values().map(|(h, _)| h).sum::<u64>();
        ev
    }

    fn used(&self, now: Instant) -> Duration {
        self.used
            + self
                .running
                .values()
                .map(|(_, t)| now.saturating_duration_since(*t))
                .sum::<Duration>()
    }
}

struct Live<'a> {
    s: &'a Settings,
    per: Vec<Per>,
    /// The reference's final measurement, once settled.
    settled: Option<Reference>,
    t0: Instant,
    next_id: u64,
    boots: Vec<BootResult>,
    stop: &'a (dyn Fn() -> bool + Sync),
}

impl Live<'_> {
    fn index(&self, v: Variant) -> usize {
        self.s.variants.iter().position(|&x| x == v).unwrap_or(0)
    }

    /// Marks what is decided or out of budget as done.
    fn refresh(&mut self) {
        let now = Instant::now();
        let all_out = now.saturating_duration_since(self.t0) >= self.s.budget || (self.stop)();
        let r = self.index(self.s.reference);
        for (i, p) in self.per.iter_mut().enumerate() {
            if p.done.is_some() {
                continue;
            }
            let ev = p.evidence();
            let decided = if i == r {
                ev.failures >= self.s.reference_failures
            } else {
                ev.failures > 0
                    || ev.hangs > 0
                    || self.settled.as_ref().is_some_and(|reference| {
                        confidence::decide(&ev, Some(reference), self.s.factor).decision
                            == Decision::Clean
                    })
            };
            let out = all_out
                || ev.infra >= MAX_INFRA
                || self.s.variant_budget.is_some_and(|b| p.used(now) >= b);
            p.done = if decided {
                Some(Ended::Decision)
            } else if out {
                Some(Ended::Budget)
            } else {
                None
            };
        }
        let pr = &self.per[r];
        if self.settled.is_none() && pr.done.is_some() && pr.running.is_empty() {
            self.settled = Some(measure_reference(self.s.reference, &self.boots));
            // The reference's bound is final: some may be clean already.
            self.refresh();
        }
    }

    /// The next boot: the reference while it is not done, else the
    /// undecided variant with the fewest boots running, then started.
    fn pick(&mut self) -> Option<(usize, u64, u64)> {
        self.refresh();
        let r = self.index(self.s.reference);
        let i = if self.per[r].done.is_none() {
            r
        } else {
            (0..self.per.len())
                .filter(|&i| self.per[i].done.is_none())
                .min_by_key(|&i| (self.per[i].running.len(), self.per[i].started))?
        };
        let p = &mut self.per[i];
        let seed = self.s.seed(p.started);
        p.started += 1;
        let id = self.next_id;
        self.next_id += 1;
        p.running.insert(id, (0, Instant::now()));
        Some((i, id, seed))
    }
}

/// What the loop produced.
pub struct Run {
    /// Every boot that finished, in the order they finished.
    pub boots: Vec<BootResult>,
    pub wall: Duration,
}

/// Runs boots on `s.jobs` threads until every variant is done; `on_boot`
/// sees every finished boot (serialized), `stop` ends the run early (an
/// interrupt: the boots running are then no result).
pub fn run(
    s: &Settings,
    booter: &dyn Booter,
    on_boot: &mut (dyn FnMut(&BootResult) + Send),
    stop: &(dyn Fn() -> bool + Sync),
) -> Run {
    let t0 = Instant::now();
    let live = Mutex::new(Live {
        s,
        per: s.variants.iter().map(|_| Per::default()).collect(),
        settled: None,
        t0,
        next_id: 0,
        boots: Vec::new(),
        stop,
    });
    let on_boot = Mutex::new(on_boot);
    let lock = || live.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|scope| {
        for _ in 0..s.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some((i, id, seed)) = lock().pick() else {
                        return;
                    };
                    let variant = s.variants[i];
                    let result = booter.boot(
                        variant,
                        seed,
                        &mut |hits| {
                            let mut l = lock();
                            if let Some(h) = l.per[i].running.get_mut(&id) {
                                h.0 = hits;
                            }
                            l.refresh();
                        },
                        &|| {
                            let mut l = lock();
                            l.refresh();
                            l.per[i].done
                        },
                    );
                    let mut l = lock();
                    let started = l.per[i].running.remove(&id).map(|(_, t)| t);
                    let Some(r) = result else {
                        l.refresh();
                        continue;
                    };
                    let p = &mut l.per[i];
                    p.used += started.map_or(Duration::ZERO, |t| t.elapsed());
                    let ev = evidence(variant, std::slice::from_ref(&r));
                    p.done_ev.failures += ev.failures;
                    p.done_ev.hangs += ev.hangs;
                    p.done_ev.hits += ev.hits;
                    p.done_ev.ran += ev.ran;
                    p.done_ev.infra += ev.infra;
                    l.boots.push(r.clone());
                    l.refresh();
                    drop(l);
                    (on_boot.lock().unwrap_or_else(|e| e.into_inner()))(&r);
                }
            });
        }
    });
    let boots = live.into_inner().unwrap_or_else(|e| e.into_inner()).boots;
    Run {
        boots,
        wall: t0.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{CompareReport, SCHEMA};
    use crate::merge_confident::merge;
    use crate::summary::summarize;
    use crate::testkit::result;

    /// A fake kernel: every variant opens the window `hits_per_tick` times
    /// per Progress tick; a failing one fails after `fail_after` hits. A
    /// boot lasts at most `ticks` ticks, and yields its thread at each, so a
    /// boot waiting to be stopped does not outrun a preempted thread whose
    /// result would stop it.
    struct Fake {
        ticks: u64,
        hits_per_tick: u64,
        fail_after: HashMap<Variant, u64>,
    }

    impl Booter for Fake {
        fn boot(
            &self,
            variant: Variant,
            seed: u64,
            progress: &mut dyn FnMut(u64),
            stop: &dyn Fn() -> Option<Ended>,
        ) -> Option<BootResult> {
            let mut hits = 0;
            for _ in 0..self.ticks {
                hits += self.hits_per_tick;
                if let Some(&f) = self.fail_after.get(&variant)
                    && hits >= f
                {
                    let mut r = result(variant, Outcome::Caught, f);
                    r.seed = seed;
                    return Some(r);
                }
                progress(hits);
                std::thread::yield_now();
                if let Some(why) = stop() {
                    let mut r = result(variant, Outcome::Clean, hits);
                    r.seed = seed;
                    r.ended = Some(why);
                    return Some(r);
                }
            }
            let mut r = result(variant, Outcome::Clean, hits);
            r.seed = seed;
            Some(r)
        }
    }

    fn settings(jobs: usize) -> Settings {
        Settings {
            variants: vec![
                stress::scenarios::d15293::BASELINE,
                stress::scenarios::d15293::SWAP_PREALLOC,
                stress::scenarios::d15293::SWAP_CLIP,
            ],
            reference: stress::scenarios::d15293::BASELINE,
            factor: 2.0,
            budget: Duration::from_secs(60),
            variant_budget: None,
            reference_failures: 5,
            seed_base: 1,
            shard: None,
            jobs,
        }
    }

    #[test]
    fn decides_each_variant_and_stops_the_boots_it_no_longer_needs() {
        for jobs in [1, 3] {
            // A clean boot runs until the runner stops it: the cap (10⁸
            // hits) is only reached if the runner never does. (With 1,000
            // ticks, a reference thread preempted for a millisecond let a
            // clean boot finish uncut on a loaded CI machine.)
            let fake = Fake {
                ticks: 10_000_000,
                hits_per_tick: 10,
                fail_after: HashMap::from([
                    (stress::scenarios::d15293::BASELINE, 20),
                    (stress::scenarios::d15293::SWAP_CLIP, 150),
                ]),
            };
            let s = settings(jobs);
            let mut seen = 0;
            let run = run(&s, &fake, &mut |_| seen += 1, &|| false);
            assert_eq!(seen, run.boots.len());
            let c = judge(&s, &run.boots);
            let d = |v: Variant| {
                c.decisions
                    .iter()
                    .find(|d| d.variant == v)
                    .expect("decided")
                    .clone()
            };
            assert_eq!(
                d(stress::scenarios::d15293::BASELINE).claim.decision,
                Decision::Caught
            );
            assert_eq!(
                d(stress::scenarios::d15293::SWAP_CLIP).claim.decision,
                Decision::Caught
            );
            let clean = d(stress::scenarios::d15293::SWAP_PREALLOC);
            assert_eq!(
                clean.claim.decision,
                Decision::Clean,
                "{}",
                clean.claim.text
            );
            // The reference got its failures, and no more once settled.
            let m = c.measured.clone().expect("measured");
            assert!(m.failures >= 5, "{m:?}");
            // The clean variant really had the hits the bound needs, and its
            // boot was ended early (a 10,000-hit boot was not waited for).
            let need = confidence::hits_needed(m.clone().lower() / 2.0).expect("need");
            assert!(clean.claim.hits >= need, "{} < {need}", clean.claim.hits);
            let mine: Vec<&BootResult> = run
                .boots
                .iter()
                .filter(|b| b.variant == stress::scenarios::d15293::SWAP_PREALLOC)
                .collect();
            assert!(mine.iter().any(|b| b.ended == Some(Ended::Decision)));
            assert!(mine.iter().all(|b| b.outcome == Outcome::Clean));
            // Seeds of one variant are distinct, from the base up.
            let mut seeds: Vec<u64> = mine.iter().map(|b| b.seed).collect();
            seeds.sort_unstable();
            seeds.dedup();
            assert_eq!(seeds.len(), mine.len());
            assert_eq!(seeds[0], 1);
        }
    }

    #[test]
    fn the_budget_leaves_the_undecided_inconclusive() {
        // The reference never fails: nothing can be clean.
        let fake = Fake {
            ticks: 3,
            hits_per_tick: 10,
            fail_after: HashMap::new(),
        };
        let s = Settings {
            budget: Duration::from_millis(30),
            ..settings(1)
        };
        let run = run(&s, &fake, &mut |_| {}, &|| false);
        assert!(!run.boots.is_empty());
        let c = judge(&s, &run.boots);
        for d in &c.decisions {
            assert_eq!(d.claim.decision, Decision::Inconclusive, "{}", d.claim.text);
        }
        // A stopped run starts nothing.
        let run = super::run(&settings(2), &fake, &mut |_| {}, &|| true);
        assert!(run.boots.is_empty());
    }

    fn report(s: &Settings, boots: Vec<BootResult>) -> CompareReport {
        CompareReport {
            schema: SCHEMA,
            command: "compare --until-confident".into(),
            scenario: s.reference.scenario_id(),
            machine: crate::qemu::Machine::Microvm,
            accel: crate::qemu::Accel::Tcg,
            accel_why: String::new(),
            cpus: 4,
            seconds: 1.0,
            boots_per_variant: 0,
            seed_base: s.seed_base,
            jobs: 1,
            wall_ms: 10,
            variants: {
                let mut rows: Vec<_> = s.variants.iter().map(|v| summarize(*v, &boots)).collect();
                decided_rows(&mut rows, &judge(s, &boots));
                rows
            },
            planned: boots.len(),
            confident: Some(judge(s, &boots)),
            boots,
            kernel_sha256: String::new(),
            shard: s.shard,
            interrupted: false,
            signal: None,
            merged_from: Vec::new(),
        }
    }

    #[test]
    fn merging_shards_pools_the_boots_and_decides_again() {
        let fake = Fake {
            ticks: 1000,
            hits_per_tick: 10,
            fail_after: HashMap::from([
                (stress::scenarios::d15293::BASELINE, 20),
                (stress::scenarios::d15293::SWAP_CLIP, 150),
            ]),
        };
        let shards: Vec<(String, CompareReport)> = (1..=2)
            .map(|index| {
                let s = Settings {
                    shard: Some(Shard { index, count: 2 }),
                    ..settings(1)
                };
                let run = run(&s, &fake, &mut |_| {}, &|| false);
                (format!("s{index}.json"), report(&s, run.boots))
            })
            .collect();
        let m = merge(&shards, "merge".into()).expect("merges");
        let pooled: Vec<BootResult> = shards.iter().flat_map(|(_, r)| r.boots.clone()).collect();
        assert_eq!(m.boots.len(), pooled.len());
        assert_eq!(m.confident, Some(judge(&settings(1), &pooled)));
        let c = m.confident.expect("confident");
        assert_eq!(
            c.measured.map(|r| r.failures),
            Some(evidence(stress::scenarios::d15293::BASELINE, &pooled).failures)
        );
        // Shards that overlap or are missing are refused.
        let e = merge(&[shards[0].clone(), shards[0].clone()], "m".into()).unwrap_err();
        assert!(e.contains("both shard 1/2"), "{e}");
        let e = merge(&shards[..1], "m".into()).unwrap_err();
        assert!(e.contains("shard(s) 2/2 missing"), "{e}");
    }

    #[test]
    fn seeds_follow_the_shard() {
        let s = Settings {
            shard: Some(Shard { index: 2, count: 3 }),
            seed_base: 10,
            ..settings(1)
        };
        assert_eq!((s.seed(0), s.seed(1), s.seed(2)), (11, 14, 17));
        assert_eq!(settings(1).seed(4), 5);
    }
}
