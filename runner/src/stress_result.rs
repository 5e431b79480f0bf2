//! What one stress boot found ([`BootResult`], the per-boot record that
//! `stress --json` and `compare --json` write), classified as an
//! [`Outcome`]. What to boot is the [`StressSpec`] of
//! [`crate::stress_spec`].
//!
//! The classification (documented in the README):
//! - `caught`: an oracle fired — a `Failure` record of a finding kind
//!   (repopulated, duplicate-page, stale-data, freed-mapped, conservation),
//!   also when the kernel then failed to end the run before the timeout;
//! - `hang`: the kernel's watchdog reported a `Hang` (or a `Failure` of kind
//!   hang), or the runner's timeout expired (console busy or silent) after
//!   the kernel said Hello and started the run (Ready);
//! - `clean`: `Done{pass}` with the final counters, Pass exit, clean console
//!   (inconclusive — `stress` says INCONCLUSIVE and exits 4 — when the race
//!   window never opened: 0 window hits);
//! - `infra`: everything else — QEMU failed, a timeout before the run
//!   started (QEMU printed nothing, or no Ready), a kernel panic or CPU
//!   exception (a kernel bug, not a finding about a variant), a garbled or
//!   cut console, a `swap-io` failure or a clean run whose swap writes all
//!   failed (the disk failed), a Fail without a Failure record, or a
//!   Failure naming another variant or seed than the one booted. An infra
//!   boot is never counted as clean.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stress::proto::{CpuWait, Record};
use stress::{FailureKind, ScenarioId, Stats, Variant};

use crate::boot::BootOutcome;
use crate::error::{EXIT_FAILURE, EXIT_INCONCLUSIVE, EXIT_INFRA, EXIT_OK};
use crate::qemu::{Accel, Machine};
use crate::seed;
use crate::stress_spec::StressSpec;
use crate::verdict::{Exit, Verdict};

/// What a boot amounted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// An oracle caught a failure.
    Caught,
    /// The run ended cleanly.
    Clean,
    /// The kernel's watchdog or the runner's timeout saw a hang.
    Hang,
    /// The boot could not tell anything about the variant (see the module doc).
    Infra,
}

impl Outcome {
    /// The name used in tables and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Caught => "caught",
            Outcome::Clean => "clean",
            Outcome::Hang => "hang",
            Outcome::Infra => "infra",
        }
    }

    /// The exit status of `cargo xtask stress` for this outcome.
    pub const fn exit_status(self) -> u8 {
        match self {
            Outcome::Clean => EXIT_OK,
            Outcome::Caught | Outcome::Hang => EXIT_FAILURE,
            Outcome::Infra => EXIT_INFRA,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The failure an oracle reported (without its traces).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    pub kind: FailureKind,
    pub cpu: u32,
    /// Time to detection: ms since the stress run started.
    pub ms: u64,
    pub detail: String,
}

/// Who noticed a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HangBy {
    /// The kernel's watchdog (a `Hang` record, or the Hang exit status).
    Watchdog,
    /// An oracle's `Failure` of kind hang.
    Oracle,
    /// The runner's timeout, with the console still busy.
    Timeout,
    /// The runner's timeout, with the console silent.
    SilentTimeout,
}

/// A hang.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HangInfo {
    /// The kernel's stall time, or the runner's timeout.
    pub ms: u64,
    /// What every CPU waited on (from the kernel's `Hang` record).
    pub waits: Vec<CpuWait>,
    pub by: HangBy,
}

/// Why the runner ended a boot before the kernel did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// Its variant was decided (`compare --until-confident`).
    Decision,
    /// The budget of `compare --until-confident` ran out.
    Budget,
}

impl Ended {
    pub const fn name(self) -> &'static str {
        match self {
            Ended::Decision => "variant decided",
            Ended::Budget => "budget spent",
        }
    }
}

/// One boot's result: the per-boot record of the JSON reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BootResult {
    /// The race (absent before schema 3: d15293).
    #[serde(default)]
    pub scenario: ScenarioId,
    pub variant: Variant,
    #[serde(with = "seed::serde_hex")]
    pub seed: u64,
    pub cpus: u32,
    pub seconds: f64,
    pub machine: Machine,
    pub accel: Accel,
    pub outcome: Outcome,
    /// The boot engine's verdict (`Pass`, `Fail`, `Hang`, `Panic`, ...).
    pub verdict: String,
    /// One line: why.
    pub reason: String,
    /// `cargo xtask stress`'s exit status for this boot: 0 clean, 1 caught
    /// or hang, 3 infra, 4 clean but inconclusive (0 window hits).
    pub exit_status: u8,
    /// QEMU's exit status (`None` when it was killed or did not start).
    pub qemu_status: Option<i32>,
    pub failure: Option<FailureInfo>,
    pub hang: Option<HangInfo>,
    /// The last counters: `Done`'s, else the last `Progress`'s.
    pub stats: Option<Stats>,
    /// The stress run's own length in ms (`Done.ms`, else the last `Progress.ms`).
    pub run_ms: Option<u64>,
    /// Wall time of the whole boot (QEMU spawn to exit or kill).
    pub elapsed_ms: u64,
    /// The command that runs it again.
    pub replay: String,
    /// The runner ended the boot early (QEMU killed, not a finding): then
    /// `stats` are the last `Progress` record's, the hits it counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
}

impl BootResult {
    /// Judges a stress boot.
    pub fn from_outcome(spec: &StressSpec, out: &BootOutcome, elapsed: Duration) -> Self {
        let (stats, run_ms) = out.last_stats();
        let failure_rec = out.console.failures().next();
        let caught = |f: &stress::Failure| {
            format!(
                "{} on cpu {} after {} ms: {}",
                f.kind, f.cpu, f.ms, f.detail
            )
        };
        let watchdog = out.console.hang().and_then(|r| match r {
            Record::Hang { ms, waits, .. } => Some(HangInfo {
                ms: *ms,
                waits: waits.clone(),
                by: HangBy::Watchdog,
            }),
            _ => None,
        });
        let verdict = *out.verdict();
        let timeout_ms = spec.timeout().as_millis() as u64;
        let mut reason = out.judgement.reason.clone();
        // An oracle fired, but the kernel then never ended the run (the
        // runner's timeout): still a finding.
        let caught_then_stuck = out.exit == Exit::TimedOut
            && watchdog.is_none()
            && failure_rec.is_some_and(|f| {
                f.variant == spec.variant
                    && f.seed == spec.seed
                    && !matches!(f.kind, FailureKind::SwapIo | FailureKind::Hang)
            });
        // A hang found by the runner's timeout is a finding only about a
        // kernel that ran the workload: one that said Hello and started the
        // stress run (Ready). Before that, nothing about the variant ran.
        let never_ran = out.exit == Exit::TimedOut
            && watchdog.is_none()
            && !caught_then_stuck
            && out.console.ready_at.is_none();
        let (outcome, hang) = match (verdict, failure_rec) {
            (Verdict::Hang | Verdict::HangSilent, _) if never_ran => {
                reason = not_started(out, spec.timeout());
                (Outcome::Infra, None)
            }
            (Verdict::Pass, _) if stats.as_ref().is_some_and(writes_all_failed) => {
                let st = stats.as_ref().map_or(0, |s| s.swapouts);
                reason = format!(
                    "the swap disk failed (an infrastructure error): all {st} swap writes failed (0 pages paged out)"
                );
                (Outcome::Infra, None)
            }
            (Verdict::Hang | Verdict::HangSilent, Some(f)) if caught_then_stuck => {
                reason = format!(
                    "{} (then the kernel did not end the run: {reason})",
                    caught(f)
                );
                (Outcome::Caught, None)
            }
            (Verdict::Pass, _) if stats.is_some() => (Outcome::Clean, None),
            (Verdict::Pass, _) => {
                reason =
                    "Done{pass} without the final counters (the contract wants Done.stats)".into();
                (Outcome::Infra, None)
            }
            (Verdict::Fail, _) => match failure_rec {
                Some(f) if f.variant != spec.variant || f.seed != spec.seed => {
                    reason = format!(
                        "the kernel's Failure names variant {} seed {} but the boot asked for variant {} seed {}",
                        f.variant,
                        seed::show(f.seed),
                        spec.variant,
                        seed::show(spec.seed)
                    );
                    (Outcome::Infra, None)
                }
                Some(f) if f.kind == FailureKind::SwapIo => {
                    reason = format!(
                        "the swap disk failed (an infrastructure error): {}",
                        f.detail
                    );
                    (Outcome::Infra, None)
                }
                Some(f) if f.kind == FailureKind::Hang => (
                    Outcome::Hang,
                    Some(HangInfo {
                        ms: f.ms,
                        waits: Vec::new(),
                        by: HangBy::Oracle,
                    }),
                ),
                Some(f) => {
                    reason = caught(f);
                    (Outcome::Caught, None)
                }
                None => {
                    reason = format!("the kernel failed without a Failure record: {reason}");
                    (Outcome::Infra, None)
                }
            },
            (Verdict::Hang, _) => {
                let (ms, by) = if out.exit == Exit::TimedOut {
                    (timeout_ms, HangBy::Timeout)
                } else {
                    (run_ms.unwrap_or_default(), HangBy::Watchdog)
                };
                let waits = Vec::new();
                (
                    Outcome::Hang,
                    Some(watchdog.unwrap_or(HangInfo { ms, waits, by })),
                )
            }
            (Verdict::HangSilent, _) => (
                Outcome::Hang,
                Some(HangInfo {
                    ms: timeout_ms,
                    waits: Vec::new(),
                    by: HangBy::SilentTimeout,
                }),
            ),
            (
                Verdict::Panic
                | Verdict::Exception
                | Verdict::DiskMissing
                | Verdict::TripleFault
                | Verdict::Garbled
                | Verdict::EarlyExit
                | Verdict::Crashed
                | Verdict::QemuFailed
                | Verdict::Infra,
                _,
            ) => (Outcome::Infra, None),
        };
        BootResult {
            scenario: spec.variant.scenario_id(),
            variant: spec.variant,
            seed: spec.seed,
            cpus: spec.cpus,
            seconds: spec.duration.as_secs_f64(),
            machine: spec.machine,
            accel: spec.accel,
            outcome,
            verdict: verdict.name().into(),
            reason: crate::error::one_line(&reason),
            exit_status: if outcome == Outcome::Clean
                && stats.as_ref().is_some_and(|s| s.window_hits == 0)
            {
                EXIT_INCONCLUSIVE
            } else {
                outcome.exit_status()
            },
            qemu_status: match out.exit {
                Exit::Status(s) => Some(s),
                _ => None,
            },
            failure: failure_rec
                .filter(|_| outcome == Outcome::Caught)
                .map(|f| FailureInfo {
                    kind: f.kind,
                    cpu: f.cpu,
                    ms: f.ms,
                    detail: f.detail.clone(),
                }),
            hang,
            stats,
            run_ms,
            elapsed_ms: elapsed.as_millis() as u64,
            replay: spec.replay(),
            ended: None,
        }
    }

    /// Judges a stress boot that the runner ended early (`why`), killing
    /// QEMU. Cutting a boot short is never a finding: what the kernel had
    /// reported before the kill decides. A `Failure` or `Hang` record is
    /// judged as in [`BootResult::from_outcome`]; a panic or a damaged
    /// console stays infra; otherwise the boot is clean up to its last
    /// `Progress` record, whose counters (window hits) it keeps. A boot
    /// whose QEMU had already exited by itself is judged as usual.
    pub fn ended_early(
        spec: &StressSpec,
        out: &BootOutcome,
        elapsed: Duration,
        why: Ended,
    ) -> Self {
        let mut r = Self::from_outcome(spec, out, elapsed);
        if matches!(out.exit, Exit::Status(_)) || *out.verdict() != Verdict::Crashed {
            return r;
        }
        r.ended = Some(why);
        let mine = |f: &&stress::Failure| f.variant == spec.variant && f.seed == spec.seed;
        let (outcome, reason) = match (out.console.failures().next(), out.console.hang()) {
            (Some(f), _) if !mine(&f) || f.kind == FailureKind::SwapIo => return r,
            (Some(f), _) if f.kind == FailureKind::Hang => {
                r.hang = Some(HangInfo {
                    ms: f.ms,
                    waits: Vec::new(),
                    by: HangBy::Oracle,
                });
                (
                    Outcome::Hang,
                    format!("hang reported by an oracle: {}", f.detail),
                )
            }
            (Some(f), _) => {
                r.failure = Some(FailureInfo {
                    kind: f.kind,
                    cpu: f.cpu,
                    ms: f.ms,
                    detail: f.detail.clone(),
                });
                (
                    Outcome::Caught,
                    format!(
                        "{} on cpu {} after {} ms: {}",
                        f.kind, f.cpu, f.ms, f.detail
                    ),
                )
            }
            (None, Some(Record::Hang { ms, waits, .. })) => {
                r.hang = Some(HangInfo {
                    ms: *ms,
                    waits: waits.clone(),
                    by: HangBy::Watchdog,
                });
                (
                    Outcome::Hang,
                    format!("the watchdog saw a hang after {ms} ms"),
                )
            }
            _ => (
                Outcome::Clean,
                format!(
                    "ended by the runner ({}) after {} ms of stress: no failure up to the last progress record",
                    why.name(),
                    r.run_ms.unwrap_or(0)
                ),
            ),
        };
        r.outcome = outcome;
        r.exit_status = outcome.exit_status();
        r.verdict = "Ended".into();
        r.reason = crate::error::one_line(&reason);
        r
    }

    /// Window hits of the boot (0 without counters).
    pub fn window_hits(&self) -> u64 {
        self.stats.as_ref().map_or(0, |s| s.window_hits)
    }
}

/// Every swap write the kernel issued failed: the disk refused them (the
/// kernel keeps the pages dirty and goes on, so the run looks clean).
fn writes_all_failed(s: &Stats) -> bool {
    s.swapouts > 0 && s.pageouts == 0
}

/// Why a boot that timed out before the stress run started is no hang of
/// the variant.
fn not_started(out: &BootOutcome, timeout: Duration) -> String {
    let t = crate::verdict::secs(timeout);
    if out.console.hello_at.is_none() {
        let printed = if out.console.lines == 0 {
            "printed nothing".to_string()
        } else {
            format!("printed {} line(s) but no Hello record", out.console.lines)
        };
        format!(
            "QEMU {printed} until the runner's timeout ({t}): the kernel never started, so nothing about the variant ran"
        )
    } else {
        format!(
            "the kernel said Hello but never started the stress run (no Ready record) until the runner's timeout ({t})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use stress::scenarios::d15293;

    fn spec() -> StressSpec {
        stress_spec()
    }

    fn judge(records: Vec<Record>, exit: Exit) -> BootResult {
        let out = outcome(records, exit);
        BootResult::from_outcome(&spec(), &out, Duration::from_millis(5300))
    }

    #[test]
    fn clean_run_keeps_the_final_counters() {
        let r = judge(
            vec![
                hello(),
                ready(),
                progress(250, 1),
                done(true, 5000, Some(stats(7))),
            ],
            Exit::Status(33),
        );
        assert_eq!((r.outcome, r.exit_status), (Outcome::Clean, 0), "{r:?}");
        assert_eq!((r.window_hits(), r.run_ms), (7, Some(5000)));
        // Clean, but the window never opened: inconclusive, exit 4.
        let r = judge(
            vec![hello(), ready(), done(true, 5000, Some(stats(0)))],
            Exit::Status(33),
        );
        assert_eq!((r.outcome, r.exit_status), (Outcome::Clean, 4), "{r:?}");
        assert_eq!((r.failure.clone(), r.hang.clone()), (None, None));
        assert_eq!((r.elapsed_ms, r.qemu_status), (5300, Some(33)));
        assert_eq!(r.replay, spec().replay());
        // Done without counters breaks the contract: not clean.
        let r = judge(
            vec![hello(), ready(), done(true, 5000, None)],
            Exit::Status(33),
        );
        assert_eq!(r.outcome, Outcome::Infra, "{r:?}");
    }

    #[test]
    fn oracle_failure_is_caught_with_its_facts() {
        let r = judge(
            vec![
                hello(),
                ready(),
                progress(250, 2),
                failure(d15293::BASELINE, 0x2a, FailureKind::Repopulated),
                done(false, 1300, Some(stats(3))),
            ],
            Exit::Status(35),
        );
        assert_eq!((r.outcome, r.exit_status), (Outcome::Caught, 1), "{r:?}");
        let f = r.failure.clone().expect("failure");
        assert_eq!((f.kind, f.cpu, f.ms), (FailureKind::Repopulated, 2, 1234));
        assert!(
            r.reason.starts_with("repopulated on cpu 2 after 1234 ms"),
            "{}",
            r.reason
        );
        assert_eq!(r.window_hits(), 3);
    }

    #[test]
    fn failures_that_say_nothing_about_the_variant_are_infra() {
        for (rec, why) in [
            (
                failure(d15293::SWAP_CLIP, 0x2a, FailureKind::Repopulated),
                "names variant swap-clip",
            ),
            (
                failure(d15293::BASELINE, 0x2b, FailureKind::Repopulated),
                "seed 0x2b",
            ),
            (
                failure(d15293::BASELINE, 0x2a, FailureKind::SwapIo),
                "swap disk failed",
            ),
        ] {
            let r = judge(
                vec![hello(), ready(), rec, done(false, 1300, Some(stats(0)))],
                Exit::Status(35),
            );
            assert_eq!((r.outcome, r.exit_status), (Outcome::Infra, 3), "{r:?}");
            assert!(r.reason.contains(why), "{}", r.reason);
            assert_eq!(r.failure, None);
        }
        let r = judge(
            vec![hello(), ready(), done(false, 10, Some(stats(0)))],
            Exit::Status(35),
        );
        assert_eq!(r.outcome, Outcome::Infra);
        assert!(
            r.reason.contains("without a Failure record"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn hangs_from_the_watchdog_an_oracle_or_the_timeout() {
        let hang = Record::Hang {
            ms: 3100,
            waits: vec![CpuWait {
                cpu: 1,
                wait: "pip obj 3".into(),
                stalled_ms: 3100,
            }],
            traces: vec![],
        };
        let r = judge(
            vec![
                hello(),
                ready(),
                progress(250, 0),
                hang,
                done(false, 3500, Some(stats(0))),
            ],
            Exit::Status(39),
        );
        assert_eq!((r.outcome, r.exit_status), (Outcome::Hang, 1), "{r:?}");
        let h = r.hang.clone().expect("hang");
        assert_eq!((h.ms, h.by, h.waits.len()), (3100, HangBy::Watchdog, 1));

        let r = judge(
            vec![
                hello(),
                ready(),
                failure(d15293::BASELINE, 0x2a, FailureKind::Hang),
                done(false, 1, None),
            ],
            Exit::Status(35),
        );
        assert_eq!(
            (r.outcome, r.hang.map(|h| h.by)),
            (Outcome::Hang, Some(HangBy::Oracle))
        );

        // An oracle fired and the kernel never ended the run: caught.
        let r = judge(
            vec![
                hello(),
                ready(),
                failure(d15293::BASELINE, 0x2a, FailureKind::StaleData),
            ],
            Exit::TimedOut,
        );
        assert_eq!(r.outcome, Outcome::Caught, "{r:?}");
        assert!(r.reason.contains("did not end the run"), "{}", r.reason);
        assert_eq!(r.failure.map(|f| f.kind), Some(FailureKind::StaleData));

        // Timed out with nothing since Ready: a silent hang at the timeout.
        let r = judge(vec![hello(), ready()], Exit::TimedOut);
        assert_eq!(r.outcome, Outcome::Hang, "{r:?}");
        assert_eq!(
            r.hang.map(|h| (h.by, h.ms)),
            Some((HangBy::SilentTimeout, 35_000))
        );
    }

    #[test]
    fn a_timeout_before_the_run_started_is_infra_not_a_hang() {
        // QEMU printed nothing (e.g. a QEMU that only sleeps, or a guest
        // it stopped before the kernel ran).
        let r = judge(vec![], Exit::TimedOut);
        assert_eq!((r.outcome, r.exit_status), (Outcome::Infra, 3), "{r:?}");
        assert_eq!(r.verdict, "HangSilent");
        assert!(r.reason.contains("printed nothing"), "{}", r.reason);
        assert_eq!(r.hang, None);
        // Hello, but the run never started.
        let r = judge(vec![hello()], Exit::TimedOut);
        assert_eq!(r.outcome, Outcome::Infra, "{r:?}");
        assert!(r.reason.contains("no Ready record"), "{}", r.reason);
        // The kernel's watchdog is the kernel's word, run started or not.
        let hang = Record::Hang {
            ms: 3100,
            waits: vec![],
            traces: vec![],
        };
        let r = judge(vec![hello(), hang], Exit::TimedOut);
        assert_eq!(r.outcome, Outcome::Hang, "{r:?}");
    }

    #[test]
    fn a_qemu_that_prints_nothing_until_the_timeout_is_infra() {
        use std::os::unix::fs::PermissionsExt;
        // A real process that only sleeps, through the boot engine.
        let dir = tempfile::tempdir().expect("dir");
        let qemu = dir.path().join("qemu-system-x86_64");
        std::fs::write(&qemu, "#!/bin/sh\nexec sleep 300\n").expect("script");
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut b = spec().boot_spec(qemu.clone(), qemu);
        b.timeout = Duration::from_millis(800);
        b.disk_bytes = None;
        let out = crate::boot::boot(&b, &mut |_| {});
        let r = BootResult::from_outcome(&spec(), &out, Duration::from_secs(1));
        assert_eq!((r.outcome, r.exit_status), (Outcome::Infra, 3), "{r:?}");
        assert!(r.reason.contains("printed nothing"), "{}", r.reason);
    }

    #[test]
    fn a_clean_run_whose_swap_writes_all_failed_is_infra() {
        let failed = Stats {
            swapouts: 40,
            pageouts: 0,
            ..stats(0)
        };
        let r = judge(
            vec![hello(), ready(), done(true, 5000, Some(failed))],
            Exit::Status(33),
        );
        assert_eq!((r.outcome, r.exit_status), (Outcome::Infra, 3), "{r:?}");
        assert!(r.reason.contains("swap writes failed"), "{}", r.reason);
        let fine = Stats {
            swapouts: 40,
            pageouts: 300,
            ..stats(2)
        };
        let r = judge(
            vec![hello(), ready(), done(true, 5000, Some(fine))],
            Exit::Status(33),
        );
        assert_eq!(r.outcome, Outcome::Clean, "{r:?}");
    }

    #[test]
    fn a_boot_the_runner_ended_is_never_a_finding_for_being_cut_short() {
        let kill = |records: Vec<Record>| {
            let out = outcome(records, Exit::Signal(9));
            BootResult::ended_early(&spec(), &out, Duration::from_secs(1), Ended::Decision)
        };
        // Cut short after progress: clean, with the last progress's hits.
        let r = kill(vec![hello(), ready(), progress(250, 4), progress(500, 9)]);
        assert_eq!((r.outcome, r.exit_status), (Outcome::Clean, 0), "{r:?}");
        assert_eq!((r.window_hits(), r.run_ms), (9, Some(500)));
        assert_eq!(r.ended, Some(Ended::Decision));
        assert!(r.reason.contains("ended by the runner"), "{}", r.reason);
        // A failure the kernel reported before the kill still counts.
        let r = kill(vec![
            hello(),
            ready(),
            progress(250, 4),
            failure(
                stress::scenarios::d15293::BASELINE,
                0x2a,
                FailureKind::Repopulated,
            ),
        ]);
        assert_eq!(r.outcome, Outcome::Caught, "{r:?}");
        assert_eq!(r.failure.map(|f| f.kind), Some(FailureKind::Repopulated));
        // A panic stays infra.
        let panic = Record::Panic {
            cpu: 1,
            message: "boom".into(),
            exception: None,
        };
        let r = kill(vec![hello(), ready(), progress(250, 4), panic]);
        assert_eq!(r.outcome, Outcome::Infra, "{r:?}");
        // A boot that ended by itself first is judged as usual.
        let out = outcome(
            vec![hello(), ready(), done(true, 5000, Some(stats(7)))],
            Exit::Status(33),
        );
        let r = BootResult::ended_early(&spec(), &out, Duration::from_secs(1), Ended::Budget);
        assert_eq!(
            (r.outcome, r.ended, r.window_hits()),
            (Outcome::Clean, None, 7)
        );
    }

    #[test]
    fn crashes_panics_and_garbage_are_infra() {
        let panic = Record::Panic {
            cpu: 1,
            message: "boom".into(),
            exception: None,
        };
        let r = judge(vec![hello(), ready(), panic], Exit::Status(37));
        assert_eq!((r.outcome, r.verdict.as_str()), (Outcome::Infra, "Panic"));
        let r = judge(vec![hello(), ready(), progress(250, 1)], Exit::Signal(9));
        assert_eq!((r.outcome, r.verdict.as_str()), (Outcome::Infra, "Crashed"));
        assert_eq!(r.qemu_status, None);
        // A lost record (sequence gap) is garbled, never clean.
        let mut out = outcome(vec![hello(), ready()], Exit::Status(33));
        let line = stress::proto::encode(&stress::proto::Frame {
            seq: 5,
            cpu: 0,
            rec: done(true, 5000, Some(stats(3))),
        });
        out.console.push(
            line.as_bytes(),
            Duration::from_secs(1),
            crate::console::LineEnd::Newline,
        );
        let j = crate::verdict::judge(
            &out.console,
            &crate::verdict::Ending {
                exit: &Exit::Status(33),
                stderr_tail: &[],
                elapsed: Duration::from_secs(1),
                quiet: Duration::from_secs(2),
            },
        );
        out.judgement = j;
        let r = BootResult::from_outcome(&spec(), &out, Duration::from_secs(1));
        assert_eq!((r.outcome, r.verdict.as_str()), (Outcome::Infra, "Garbled"));
    }
}
