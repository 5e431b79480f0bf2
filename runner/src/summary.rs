//! Statistics of a variant's boots and the verdict they support: failure
//! rate with a 95% Wilson score interval, failure kinds, hangs, median time
//! to first failure, window coverage, the scenario's cost counters
//! (`Scenario::costs`; D15293's wasted/discarded/leaked pages) and
//! throughput.
//!
//! The verdict of a variant is decided from its boots, in this order:
//! 0. `not-run`: no boot of the variant finished (an interrupted run);
//! 1. `error`: no boot ran (every boot was an infrastructure error);
//! 2. `mixed`: some boots were caught by an oracle and some hung;
//! 3. `caught`: an oracle caught a failure in at least one boot;
//! 4. `hangs`: at least one boot hung (and none was caught);
//! 5. `inconclusive`: every boot that ran was clean, but in some boot the
//!    race window never opened (0 window hits), or some boots did not run
//!    (infrastructure errors) — a clean result that proves nothing;
//! 6. `clean`: every boot ran, ended clean, and opened the window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stress::Variant;

use crate::stress_result::{BootResult, Outcome};

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval of `k` successes in `n` trials at `z`
/// (`None` for `n == 0`).
pub fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || k > n {
        return None;
    }
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let d = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / d;
    let half = z / d * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((center - half).max(0.0), (center + half).min(1.0)))
}

/// The median (`None` when empty).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    median_sorted(&v)
}

/// The median of values already in ascending order (`None` when empty).
pub fn median_sorted(v: &[f64]) -> Option<f64> {
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// What a variant's boots support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantVerdict {
    Caught,
    Clean,
    Inconclusive,
    Hangs,
    Mixed,
    Error,
    /// No boot of the variant finished (an interrupted run).
    NotRun,
}

impl VariantVerdict {
    pub const fn name(self) -> &'static str {
        match self {
            VariantVerdict::Caught => "caught",
            VariantVerdict::Clean => "clean",
            VariantVerdict::Inconclusive => "inconclusive",
            VariantVerdict::Hangs => "hangs",
            VariantVerdict::Mixed => "mixed",
            VariantVerdict::Error => "error",
            VariantVerdict::NotRun => "not-run",
        }
    }
}

impl std::fmt::Display for VariantVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The summary of one variant's boots (one row of `compare`'s table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantSummary {
    pub variant: Variant,
    /// Boots tried.
    pub boots: u64,
    /// Boots that ran (not infrastructure errors).
    pub ran: u64,
    /// Boots where an oracle caught a failure.
    pub failed_boots: u64,
    /// failed_boots / ran.
    pub failure_rate: Option<f64>,
    /// 95% Wilson score interval of the failure rate.
    pub failure_rate_low: Option<f64>,
    pub failure_rate_high: Option<f64>,
    /// Caught boots per failure kind.
    pub failure_kinds: BTreeMap<String, u64>,
    pub hangs: u64,
    /// Infrastructure errors (QEMU failed, panic, garbled, ...).
    pub infra: u64,
    /// Median time to first failure over the caught boots (`Failure.ms`).
    pub median_ttf_ms: Option<f64>,
    /// Window hits summed over the boots that ran.
    pub window_hits: u64,
    /// The fewest window hits of a boot that ran.
    pub window_hits_min: Option<u64>,
    /// Clean boots whose window never opened.
    pub clean_without_window: u64,
    /// D15293's costs, kept for readers of older documents (also in `costs`
    /// for D15293).
    pub wasted: u64,
    pub discarded: u64,
    pub leaked: u64,
    /// The scenario's cost counters (`Scenario::costs`) by name, summed over
    /// the boots that ran. Absent in documents written before it.
    #[serde(default)]
    pub costs: BTreeMap<String, u64>,
    /// Faults and forks per second of stress run time, over the boots that ran.
    pub faults_per_s: Option<f64>,
    pub forks_per_s: Option<f64>,
    pub verdict: VariantVerdict,
    /// One line on why the verdict.
    pub why: String,
}

/// Summarizes the boots of `variant` among `boots`.
pub fn summarize(variant: Variant, boots: &[BootResult]) -> VariantSummary {
    let mine: Vec<&BootResult> = boots.iter().filter(|b| b.variant == variant).collect();
    let count = |o: Outcome| mine.iter().filter(|b| b.outcome == o).count() as u64;
    let (caught, clean, hangs, infra) = (
        count(Outcome::Caught),
        count(Outcome::Clean),
        count(Outcome::Hang),
        count(Outcome::Infra),
    );
    let ran: Vec<&&BootResult> = mine
        .iter()
        .filter(|b| b.outcome != Outcome::Infra)
        .collect();
    let n = ran.len() as u64;
    let mut kinds = BTreeMap::new();
    for f in mine.iter().filter_map(|b| b.failure.as_ref()) {
        *kinds.entry(f.kind.name().to_string()).or_insert(0) += 1;
    }
    let ttf = median(
        mine.iter()
            .filter_map(|b| b.failure.as_ref())
            .map(|f| f.ms as f64)
            .collect(),
    );
    let sum = |get: &dyn Fn(&stress::Stats) -> u64| -> u64 {
        ran.iter()
            .filter_map(|b| b.stats.as_ref())
            .map(get)
            .sum::<u64>()
    };
    let costs = variant
        .scenario()
        .costs
        .iter()
        .map(|c| (c.name().to_string(), sum(&|s| s.get(*c))))
        .collect();
    let window_hits_min = ran.iter().map(|b| b.window_hits()).min();
    let clean_without_window = ran
        .iter()
        .filter(|b| b.outcome == Outcome::Clean && b.window_hits() == 0)
        .count() as u64;
    let run_ms: u64 = ran
        .iter()
        .filter(|b| b.stats.is_some())
        .filter_map(|b| b.run_ms)
        .sum();
    let per_s = |total: u64| (run_ms > 0).then(|| total as f64 * 1e3 / run_ms as f64);
    let rate = wilson(caught, n, Z95);
    let (verdict, why) = if mine.is_empty() {
        (
            VariantVerdict::NotRun,
            "no boot of this variant finished".to_string(),
        )
    } else {
        decide(caught, hangs, infra, clean, clean_without_window, n)
    };
    VariantSummary {
        variant,
        boots: mine.len() as u64,
        ran: n,
        failed_boots: caught,
        failure_rate: (n > 0).then(|| caught as f64 / n as f64),
        failure_rate_low: rate.map(|r| r.0),
        failure_rate_high: rate.map(|r| r.1),
        failure_kinds: kinds,
        hangs,
        infra,
        median_ttf_ms: ttf,
        window_hits: sum(&|s| s.window_hits),
        window_hits_min,
        clean_without_window,
        wasted: sum(&|s| s.wasted),
        discarded: sum(&|s| s.discarded),
        leaked: sum(&|s| s.leaked),
        costs,
        faults_per_s: per_s(sum(&|s| s.faults)),
        forks_per_s: per_s(sum(&|s| s.forks)),
        verdict,
        why,
    }
}

/// The verdict rule of the module documentation.
fn decide(
    caught: u64,
    hangs: u64,
    infra: u64,
    clean: u64,
    clean_without_window: u64,
    ran: u64,
) -> (VariantVerdict, String) {
    use VariantVerdict::*;
    if ran == 0 {
        return (
            Error,
            format!("no boot ran: {infra} infrastructure error(s)"),
        );
    }
    if caught > 0 && hangs > 0 {
        return (
            Mixed,
            format!("caught in {caught}/{ran} boots and hung in {hangs}"),
        );
    }
    if caught > 0 {
        return (Caught, format!("an oracle fired in {caught}/{ran} boots"));
    }
    if hangs > 0 {
        return (Hangs, format!("hung in {hangs}/{ran} boots"));
    }
    if clean_without_window > 0 {
        return (
            Inconclusive,
            format!(
                "clean, but the race window never opened in {clean_without_window}/{clean} boots"
            ),
        );
    }
    if infra > 0 {
        return (
            Inconclusive,
            format!("clean in {clean} boots, but {infra} boot(s) did not run"),
        );
    }
    (
        Clean,
        format!("clean in {clean}/{clean} boots, window open in every one"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress_result::FailureInfo;
    use crate::testkit::result;
    use stress::FailureKind;
    use stress::scenarios::d15293;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn wilson_matches_known_values() {
        for (k, n, lo, hi) in [
            (9, 10, 0.59585, 0.98212),
            (0, 10, 0.0, 0.27753),
            (5, 10, 0.23659, 0.76341),
            (10, 10, 0.72247, 1.0),
            (1, 3, 0.06149, 0.79234),
            (81, 263, 0.25529, 0.36621),
        ] {
            let (l, h) = wilson(k, n, Z95).expect("n > 0");
            assert!(close(l, lo) && close(h, hi), "{k}/{n}: ({l}, {h})");
        }
        assert_eq!(wilson(0, 0, Z95), None);
        assert_eq!(wilson(3, 2, Z95), None);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    fn caught(kind: FailureKind, ms: u64) -> BootResult {
        let mut r = result(d15293::BASELINE, Outcome::Caught, 3);
        r.failure = Some(FailureInfo {
            kind,
            cpu: 1,
            ms,
            detail: "x".into(),
        });
        r
    }

    #[test]
    fn caught_variant_counts_kinds_rate_and_median() {
        let boots = vec![
            caught(FailureKind::Repopulated, 100),
            caught(FailureKind::Repopulated, 300),
            caught(FailureKind::DuplicatePage, 200),
            result(d15293::BASELINE, Outcome::Clean, 0),
            result(d15293::BASELINE, Outcome::Infra, 0),
            result(d15293::SWAP_PREALLOC, Outcome::Clean, 9),
        ];
        let s = summarize(d15293::BASELINE, &boots);
        assert_eq!((s.boots, s.ran, s.failed_boots, s.infra), (5, 4, 3, 1));
        assert_eq!(s.verdict, VariantVerdict::Caught, "{}", s.why);
        assert_eq!(s.failure_rate, Some(0.75));
        let (lo, hi) = wilson(3, 4, Z95).expect("interval");
        assert_eq!(
            (s.failure_rate_low, s.failure_rate_high),
            (Some(lo), Some(hi))
        );
        assert_eq!(s.failure_kinds.get("repopulated"), Some(&2));
        assert_eq!(s.failure_kinds.get("duplicate-page"), Some(&1));
        assert_eq!(s.median_ttf_ms, Some(200.0));
        // The infra boot's counters are not summed; the clean one's are.
        assert_eq!(s.window_hits, 9);
        assert_eq!(s.window_hits_min, Some(0));
        // Faults: 100 per boot in 1000 ms each (see testkit::result).
        assert!(close(s.faults_per_s.expect("rate"), 100.0));
    }

    #[test]
    fn clean_needs_the_window_open_in_every_boot() {
        let all_open: Vec<BootResult> = (0..3)
            .map(|i| result(d15293::SWAP_PREALLOC, Outcome::Clean, 5 + i))
            .collect();
        let s = summarize(d15293::SWAP_PREALLOC, &all_open);
        assert_eq!(s.verdict, VariantVerdict::Clean, "{}", s.why);
        assert_eq!(s.window_hits, 18);
        assert_eq!(s.window_hits_min, Some(5));
        assert_eq!(s.failure_rate, Some(0.0));

        let mut one_closed = all_open.clone();
        one_closed[1] = result(d15293::SWAP_PREALLOC, Outcome::Clean, 0);
        let s = summarize(d15293::SWAP_PREALLOC, &one_closed);
        assert_eq!(s.verdict, VariantVerdict::Inconclusive);
        assert!(s.why.contains("never opened in 1/3"), "{}", s.why);
        assert_eq!(s.clean_without_window, 1);

        let mut one_broken = all_open.clone();
        one_broken.push(result(d15293::SWAP_PREALLOC, Outcome::Infra, 0));
        let s = summarize(d15293::SWAP_PREALLOC, &one_broken);
        assert_eq!(s.verdict, VariantVerdict::Inconclusive, "{}", s.why);
        assert!(s.why.contains("did not run"), "{}", s.why);
    }

    #[test]
    fn hangs_mixed_and_error() {
        let v = d15293::SPLIT_PIPWAIT;
        let hang = result(v, Outcome::Hang, 0);
        let s = summarize(v, &[hang.clone(), result(v, Outcome::Clean, 4)]);
        assert_eq!((s.verdict, s.hangs), (VariantVerdict::Hangs, 1));
        let mut c = caught(FailureKind::StaleData, 5);
        c.variant = v;
        assert_eq!(summarize(v, &[hang, c]).verdict, VariantVerdict::Mixed);
        let s = summarize(v, &[result(v, Outcome::Infra, 0)]);
        assert_eq!(
            (s.verdict, s.ran, s.failure_rate),
            (VariantVerdict::Error, 0, None)
        );
        // No boot of the variant finished (an interrupted run): not run.
        let s = summarize(v, &[]);
        assert_eq!((s.verdict, s.boots), (VariantVerdict::NotRun, 0));
        assert_eq!(s.verdict.name(), "not-run");
    }
}
