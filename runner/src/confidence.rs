//! The decision rule of `compare --until-confident`, on counts alone (no
//! boots, no scenario): exact binomial bounds on a per-window-hit failure
//! rate, the F× test against a reference, and the claim each decision
//! states in words and numbers.
//!
//! The model: every window hit of a variant fails (an oracle fires) with
//! some fixed probability p, independently. Then
//! - 0 failures in H hits bounds p from above at 95%: p < 1 − 0.05^(1/H)
//!   (exact binomial; ≈ 3/H, the rule of three);
//! - k ≥ 1 failures in n hits bounds p from below at 95%: the Clopper–Pearson
//!   one-sided bound, the p at which P(X ≥ k | n, p) = 0.05;
//! - a variant is **clean at F×** when its upper bound is at most the
//!   reference's lower bound divided by F: even at its worst, it fails at
//!   least F times less often per hit than the reference at its best.
//!
//! Each bound holds with 95% on its own; the claim rests on two of them.

use serde::{Deserialize, Serialize};

/// One-sided error of every bound (95% confidence).
pub const ALPHA: f64 = 0.05;

/// 95% upper bound on the per-hit failure rate after 0 failures in `hits`
/// hits: `1 − α^(1/hits)` (exact; ≈ 3/hits). `None` for 0 hits.
pub fn upper_zero(hits: u64) -> Option<f64> {
    (hits > 0).then(|| -(ALPHA.ln() / hits as f64).exp_m1())
}

/// P(X ≥ k) for X ~ Binomial(n, p), summed in log space (no overflow for
/// large n).
pub fn tail_ge(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (ln_q, ln_odds) = ((-p).ln_1p(), (p / (1.0 - p)).ln());
    let mut ln_pmf = n as f64 * ln_q;
    let mut below = 0.0;
    for i in 0..k {
        below += ln_pmf.exp();
        ln_pmf += ((n - i) as f64 / (i + 1) as f64).ln() + ln_odds;
    }
    (1.0 - below).clamp(0.0, 1.0)
}

/// 95% lower bound on the per-hit failure rate after `failures` failures
/// in `hits` hits (one-sided Clopper–Pearson; 0 for no failure). A failure
/// needs a hit: fewer hits than failures count as that many.
pub fn lower(failures: u64, hits: u64) -> f64 {
    if failures == 0 {
        return 0.0;
    }
    let n = hits.max(failures);
    if failures == n {
        return ALPHA.powf(1.0 / n as f64);
    }
    // tail_ge rises with p; the bound lies below the point estimate.
    let (mut lo, mut hi) = (0.0, failures as f64 / n as f64);
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if tail_ge(failures, n, mid) < ALPHA {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The fewest failure-free hits whose 95% upper bound is at most `rate`
/// (`None` when `rate` is 0: no count suffices).
pub fn hits_needed(rate: f64) -> Option<u64> {
    if rate.is_nan() || rate <= 0.0 {
        return None;
    }
    if rate >= 1.0 {
        return Some(1);
    }
    let mut h = (ALPHA.ln() / (-rate).ln_1p()).ceil().max(1.0) as u64;
    // Guard the float edge: the smallest h whose bound really is ≤ rate.
    while h > 1 && upper_zero(h - 1).is_some_and(|u| u <= rate) {
        h -= 1;
    }
    while upper_zero(h).is_some_and(|u| u > rate) {
        h += 1;
    }
    Some(h)
}

/// The reference's measured per-hit failure rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// The reference variant's name (the scenario's unfixed variant).
    pub name: String,
    /// Boots an oracle caught (each ends at its first failure).
    pub failures: u64,
    /// Window hits of every boot that ran, up to its end.
    pub hits: u64,
}

impl Reference {
    /// failures / hits (`None` without a failure).
    pub fn rate(&self) -> Option<f64> {
        (self.failures > 0).then(|| self.failures as f64 / self.hits.max(self.failures) as f64)
    }

    /// The 95% lower bound of the rate.
    pub fn lower(&self) -> f64 {
        lower(self.failures, self.hits)
    }
}

/// What one variant's boots showed, in counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Boots an oracle caught.
    pub failures: u64,
    /// Boots that hung.
    pub hangs: u64,
    /// Window hits of the boots that ran (not infrastructure errors).
    pub hits: u64,
    /// Boots that ran.
    pub ran: u64,
    /// Boots that hit an infrastructure error.
    pub infra: u64,
}

/// A variant's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// An oracle caught a failure: proof.
    Caught,
    /// A boot hung (the watchdog or the timeout; no oracle failure).
    Hangs,
    /// 0 failures in enough hits: at least F× below the reference.
    Clean,
    /// Not decided (the budget ran out, or the reference has no failure).
    Inconclusive,
}

impl Decision {
    pub const fn name(self) -> &'static str {
        match self {
            Decision::Caught => "caught",
            Decision::Hangs => "hangs",
            Decision::Clean => "clean",
            Decision::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The decision and its claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub decision: Decision,
    /// The claim in words and numbers.
    pub text: String,
    /// Window hits counted (boots that ran).
    pub hits: u64,
    /// Failures (caught boots).
    pub failures: u64,
    /// 95% upper bound of the per-hit failure rate (0 failures only).
    pub rate_upper: Option<f64>,
    /// 95% lower bound of the per-hit failure rate (failures only).
    pub rate_lower: Option<f64>,
    /// Failure-free hits a clean claim needs against the reference.
    pub hits_needed: Option<u64>,
}

/// Decides one variant from its evidence, the reference (`None` while it is
/// not settled) and the factor F. The reference decides on its own
/// failures like any other variant.
pub fn decide(ev: &Evidence, reference: Option<&Reference>, factor: f64) -> Claim {
    let needed = reference.and_then(|r| hits_needed(r.lower() / factor));
    let upper = (ev.failures == 0).then(|| upper_zero(ev.hits)).flatten();
    let lower_b = (ev.failures > 0).then(|| lower(ev.failures, ev.hits));
    let hits = group(ev.hits);
    let (decision, text) = if ev.failures > 0 {
        let rate = ev.failures as f64 / ev.hits.max(ev.failures) as f64;
        (
            Decision::Caught,
            format!(
                "caught: {} failure(s) in {hits} window hits; per-hit failure rate {} (95% lower bound {})",
                ev.failures,
                pct(rate),
                pct(lower_b.unwrap_or(0.0))
            ),
        )
    } else if ev.hangs > 0 {
        (
            Decision::Hangs,
            format!(
                "hangs: {} boot(s) hung, no oracle failure in {hits} window hits",
                ev.hangs
            ),
        )
    } else {
        match (reference, needed) {
            (Some(r), Some(need)) if ev.hits >= need => (
                Decision::Clean,
                format!(
                    "clean: 0 failures in {hits} window hits; per-hit failure rate < {} (95%), \
                     ≥ {}× below {}'s {} (95% lower bound {})",
                    pct(upper.unwrap_or(1.0)),
                    group_f(factor),
                    r.name,
                    pct(r.rate().unwrap_or(0.0)),
                    pct(r.lower())
                ),
            ),
            (Some(r), Some(need)) => (
                Decision::Inconclusive,
                format!(
                    "inconclusive: 0 failures in {hits} window hits{}; {} needed for {}× below {}'s {}",
                    upper.map_or(String::new(), |u| format!(
                        "; per-hit failure rate < {} (95%)",
                        pct(u)
                    )),
                    group(need),
                    group_f(factor),
                    r.name,
                    pct(r.rate().unwrap_or(0.0))
                ),
            ),
            (r, _) => (
                Decision::Inconclusive,
                format!(
                    "inconclusive: 0 failures in {hits} window hits; the reference{} has no measured failure rate to compare with",
                    r.map_or(String::new(), |r| format!(" {}", r.name))
                ),
            ),
        }
    };
    Claim {
        decision,
        text,
        hits: ev.hits,
        failures: ev.failures,
        rate_upper: upper,
        rate_lower: lower_b,
        hits_needed: needed,
    }
}

/// A rate as a percentage with 2 significant digits (`11.7%`, `0.088%`).
pub fn pct(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 {
        return "0%".into();
    }
    let digits = (1 - p.abs().log10().floor() as i32).max(1) as usize;
    format!("{p:.digits$}%")
}

/// An integer with thousands separators: `3,412`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A factor as written on the command line: `100`, `2.5`.
fn group_f(f: f64) -> String {
    if f.fract() == 0.0 && f < 1e15 {
        group(f as u64)
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(X ≥ k) for Binomial(n, p) by direct products (small n only).
    fn brute_tail(k: u64, n: u64, p: f64) -> f64 {
        let mut sum = 0.0;
        for i in k..=n {
            let mut c = 1.0;
            for j in 0..i {
                c = c * (n - j) as f64 / (j + 1) as f64;
            }
            sum += c * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32);
        }
        sum
    }

    /// The smallest p on a fine grid at which P(X ≥ k) reaches α.
    fn brute_lower(k: u64, n: u64) -> f64 {
        let steps = 200_000;
        (0..=steps)
            .map(|i| i as f64 / steps as f64)
            .find(|&p| brute_tail(k, n, p) >= ALPHA)
            .expect("reaches alpha")
    }

    #[test]
    fn zero_failures_bound_is_exact_and_near_the_rule_of_three() {
        // 0 in 3000 hits: < 0.1%, about 3/3000.
        let u = upper_zero(3000).unwrap();
        assert!(u < 0.001 && u > 0.00099, "{u}");
        // Exact: P(0 failures | n, u) = α.
        for n in [1, 2, 7, 30, 3412, 1_000_000] {
            let u = upper_zero(n).unwrap();
            assert!(((1.0 - u).powf(n as f64) - ALPHA).abs() < 1e-9, "n {n}");
            assert!((u * n as f64 - 3.0).abs() < 0.01 * 3.0 || n < 100, "n {n}");
        }
        assert_eq!(upper_zero(0), None);
        // The example: 0 in 3,412 hits → < 0.088%.
        assert_eq!(pct(upper_zero(3412).unwrap()), "0.088%");
    }

    #[test]
    fn lower_bound_matches_a_brute_force_binomial() {
        for (k, n) in [(1, 10), (3, 20), (5, 40), (10, 60), (2, 2), (1, 1)] {
            let fast = lower(k, n);
            let slow = brute_lower(k, n);
            assert!(
                (fast - slow).abs() < 2e-5,
                "k {k} n {n}: {fast} vs brute force {slow}"
            );
            assert!((tail_ge(k, n, fast) - ALPHA).abs() < 1e-6 || k == n);
        }
        assert_eq!(lower(0, 100), 0.0);
        // Large counts stay finite and below the point estimate.
        let l = lower(12, 100_000);
        assert!(l > 0.0 && l < 12.0 / 100_000.0, "{l}");
        // One failure: about 0.0513/n.
        let l = lower(1, 10_000);
        assert!((l * 10_000.0 - 0.0513).abs() < 0.001, "{l}");
    }

    #[test]
    fn tail_agrees_with_brute_force() {
        for (k, n, p) in [(1, 10, 0.1), (3, 25, 0.05), (7, 30, 0.3), (0, 5, 0.5)] {
            let (a, b) = (tail_ge(k, n, p), brute_tail(k, n, p));
            assert!((a - b).abs() < 1e-12, "k {k} n {n} p {p}: {a} vs {b}");
        }
    }

    #[test]
    fn hits_needed_is_the_smallest_sufficient_count() {
        for rate in [0.5, 0.01, 0.00088, 1e-6] {
            let h = hits_needed(rate).unwrap();
            assert!(upper_zero(h).unwrap() <= rate, "rate {rate}");
            assert!(h == 1 || upper_zero(h - 1).unwrap() > rate, "rate {rate}");
        }
        assert_eq!(hits_needed(0.0), None);
    }

    fn reference() -> Reference {
        Reference {
            name: "baseline".into(),
            failures: 20,
            hits: 171,
        }
    }

    #[test]
    fn never_clean_with_fewer_hits_than_the_bound_needs() {
        let r = reference();
        let need = hits_needed(r.lower() / 100.0).unwrap();
        // Point estimate 11.7%; lower bound about 8%: some thousands of hits.
        assert!(need > 2000 && need < 6000, "{need}");
        for hits in [0, 1, need / 2, need - 1] {
            let ev = Evidence {
                hits,
                ran: 3,
                ..Evidence::default()
            };
            let c = decide(&ev, Some(&r), 100.0);
            assert_eq!(c.decision, Decision::Inconclusive, "{hits}: {}", c.text);
        }
        let ev = Evidence {
            hits: need,
            ran: 3,
            ..Evidence::default()
        };
        let c = decide(&ev, Some(&r), 100.0);
        assert_eq!(c.decision, Decision::Clean, "{}", c.text);
        assert!(c.rate_upper.unwrap() * 100.0 <= r.lower());
        assert!(
            c.text
                .starts_with(&format!("clean: 0 failures in {} window hits", group(need)))
                && c.text.contains("≥ 100× below baseline's 11.7%"),
            "{}",
            c.text
        );
        // A smaller factor needs fewer hits.
        let c = decide(
            &Evidence {
                hits: need / 10,
                ..ev
            },
            Some(&r),
            2.0,
        );
        assert_eq!(c.decision, Decision::Clean, "{}", c.text);
        // No reference (or one without failures): never clean.
        let c = decide(&ev, None, 100.0);
        assert_eq!(c.decision, Decision::Inconclusive);
        let none = Reference {
            failures: 0,
            ..reference()
        };
        assert_eq!(
            decide(&ev, Some(&none), 1.0).decision,
            Decision::Inconclusive
        );
    }

    #[test]
    fn one_failure_is_proof_and_hangs_are_findings() {
        let r = reference();
        let ev = Evidence {
            failures: 1,
            hits: 1_000_000,
            ran: 50,
            ..Evidence::default()
        };
        let c = decide(&ev, Some(&r), 100.0);
        assert_eq!(c.decision, Decision::Caught);
        assert!(
            c.text
                .starts_with("caught: 1 failure(s) in 1,000,000 window hits")
        );
        let ev = Evidence {
            hangs: 1,
            hits: 1_000_000,
            ran: 50,
            ..Evidence::default()
        };
        assert_eq!(decide(&ev, Some(&r), 100.0).decision, Decision::Hangs);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(group(3412), "3,412");
        assert_eq!(group(1_000_000), "1,000,000");
        assert_eq!(group(12), "12");
        assert_eq!(pct(0.117), "11.7%");
        assert_eq!(pct(0.000879), "0.088%");
        assert_eq!(pct(0.5), "50.0%");
    }
}
