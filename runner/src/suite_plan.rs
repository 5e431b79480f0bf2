//! The boot test suite's plan (`cargo xtask test`): which boots run, and
//! what each must show. Tables and case lists only; [`crate::suite`] runs
//! them and [`crate::suite_cases`] turns each boot into KTAP cases.
//!
//! - `mode=tests expect_cpus=N` for N = 1, 2, 4 on microvm and N = 2 on q35:
//!   one case for the boot's verdict (must be Pass) and one per kernel test;
//! - every `mode=crash kind=K`: one case each, passing only when the verdict
//!   is exactly the expected one (and the exception matches);
//! - `<machine>/stress/baseline`: a short `mode=stress` run of the unfixed
//!   kernel must be caught by an oracle with a repopulated or duplicate-page
//!   failure; `<machine>/stress/swap-prealloc`: the committed fix must run
//!   clean (verdict Pass) with the race window opened (window hits > 0);
//! - `<machine>/confident/swap-prealloc`: `compare --until-confident` of
//!   baseline and swap-prealloc at a small factor decides swap-prealloc
//!   clean, and the boots' own counters hold the window hits its bound needs;
//! - `accel/auto`: `--accel auto` resolves and the chosen accelerator boots;
//! - `harness/no-orphan-qemu`: no QEMU of this runner is left afterwards.

use std::time::Duration;

use crate::boot::BootOutcome;
use crate::qemu::Machine;
use crate::stress_result::{BootResult, Outcome};
use crate::verdict::Verdict;
use stress::scenarios::{self, ScenarioId};
use stress::{FailureKind, Variant};

/// The kernel's boot tests, in its order (contract: `mode=tests`).
pub use stress::ktap::BOOT_TESTS as KERNEL_TESTS;
/// Timeout of a `mode=tests` boot: they take ~0.3 s under TCG but 25–70 s
/// under this nested KVM (mostly disk_roundtrip), more on a loaded machine.
pub const TESTS_TIMEOUT: Duration = Duration::from_secs(240);
/// Timeout of a crash boot that should end by itself.
pub const CRASH_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of a crash boot that hangs on purpose.
pub const HANG_TIMEOUT: Duration = Duration::from_secs(3);
/// CPUs of the crash boots.
pub const CRASH_CPUS: u32 = 2;

/// What a classification boot must end with.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// Exactly this verdict.
    Verdict(Verdict),
    /// `Exception` with this vector.
    ExceptionVector(u8),
    /// `Exception` in a stack guard page (vector 8, the double fault).
    ExceptionStackGuard,
}

impl Expect {
    /// What it expects, for a case's message.
    pub fn describe(self) -> String {
        match self {
            Expect::Verdict(v) => v.to_string(),
            Expect::ExceptionVector(v) => format!("Exception with vector {v}"),
            Expect::ExceptionStackGuard => "Exception with stack_guard: true".into(),
        }
    }

    /// Whether an outcome is what was expected.
    pub fn matches(self, out: &BootOutcome) -> bool {
        let v = *out.verdict();
        let exception = || out.console.panic().and_then(|p| p.2);
        match self {
            Expect::Verdict(e) => v == e,
            Expect::ExceptionVector(n) => {
                v == Verdict::Exception && exception().is_some_and(|e| e.vector == n)
            }
            Expect::ExceptionStackGuard => {
                v == Verdict::Exception && exception().is_some_and(|e| e.stack_guard)
            }
        }
    }
}

/// How a classification boot is set up, besides its kernel command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// As every boot: the built kernel and a 64 MiB swap disk.
    Normal,
    /// No `-drive` (for a mode that needs the disk).
    NoDisk,
    /// `-kernel` names a file that does not exist (QEMU refuses to start).
    MissingKernel,
    /// An extra `-M <machine>,forkswap-no-such-option=on` (QEMU refuses it).
    BadMachineOption,
    /// An extra `-S`: QEMU never starts the guest (it stays paused, as
    /// QEMU leaves a guest it stopped on an I/O error).
    Paused,
}

/// One boot that must get one named verdict.
#[derive(Clone, Copy, Debug)]
pub struct Classify {
    /// The case name after `<machine>/`, e.g. `crash/panic`.
    pub case: &'static str,
    /// The kernel command line.
    pub append: Append,
    pub setup: Setup,
    pub expect: Expect,
    pub timeout: Duration,
}

const fn crash(
    case: &'static str,
    append: &'static str,
    expect: Expect,
    timeout: Duration,
) -> Classify {
    Classify {
        case,
        append: Append::Words(append),
        setup: Setup::Normal,
        expect,
        timeout,
    }
}

/// The kernel path of [`Setup::MissingKernel`].
pub const MISSING_KERNEL: &str = "/nonexistent/forkswap-kernel";

/// The classification boots: every deliberate crash of `mode=crash`, a
/// stress boot without its disk, and QEMU refusing to start. Each must get
/// exactly its verdict, and the verdict block must show the last console
/// lines (or say that nothing was printed) and QEMU's stderr.
pub const CLASSIFY: [Classify; 14] = [
    crash(
        "crash/panic",
        "mode=crash kind=panic",
        Expect::Verdict(Verdict::Panic),
        CRASH_TIMEOUT,
    ),
    crash(
        "crash/pagefault",
        "mode=crash kind=pagefault",
        Expect::ExceptionVector(14),
        CRASH_TIMEOUT,
    ),
    crash(
        "crash/stackoverflow",
        "mode=crash kind=stackoverflow",
        Expect::ExceptionStackGuard,
        CRASH_TIMEOUT,
    ),
    crash(
        "crash/exception",
        "mode=crash kind=exception",
        Expect::ExceptionVector(6),
        CRASH_TIMEOUT,
    ),
    crash(
        "crash/triplefault",
        "mode=crash kind=triplefault",
        Expect::Verdict(Verdict::TripleFault),
        CRASH_TIMEOUT,
    ),
    crash(
        "crash/hang",
        "mode=crash kind=hang",
        Expect::Verdict(Verdict::Hang),
        HANG_TIMEOUT,
    ),
    crash(
        "crash/hang-silent",
        "mode=crash kind=hang-silent",
        Expect::Verdict(Verdict::HangSilent),
        HANG_TIMEOUT,
    ),
    crash(
        "crash/garbage",
        "mode=crash kind=garbage",
        Expect::Verdict(Verdict::Garbled),
        HANG_TIMEOUT,
    ),
    crash(
        "crash/early-exit",
        "mode=crash kind=early-exit",
        Expect::Verdict(Verdict::EarlyExit),
        CRASH_TIMEOUT,
    ),
    crash(
        "crash/cut",
        "mode=crash kind=cut",
        Expect::Verdict(Verdict::Crashed),
        CRASH_TIMEOUT,
    ),
    Classify {
        case: "classify/disk-missing",
        append: Append::SpeedProbe,
        setup: Setup::NoDisk,
        expect: Expect::Verdict(Verdict::DiskMissing),
        timeout: CRASH_TIMEOUT,
    },
    Classify {
        case: "classify/qemu-missing-kernel",
        append: Append::Words("mode=probe"),
        setup: Setup::MissingKernel,
        expect: Expect::Verdict(Verdict::QemuFailed),
        timeout: CRASH_TIMEOUT,
    },
    Classify {
        case: "classify/qemu-bad-option",
        append: Append::Words("mode=probe"),
        setup: Setup::BadMachineOption,
        expect: Expect::Verdict(Verdict::QemuFailed),
        timeout: CRASH_TIMEOUT,
    },
    Classify {
        case: "classify/qemu-paused",
        append: Append::SpeedProbe,
        setup: Setup::Paused,
        expect: Expect::Verdict(Verdict::QemuFailed),
        timeout: CRASH_TIMEOUT,
    },
];

/// A suite boot's kernel command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Append {
    /// These words.
    Words(&'static str),
    /// The accelerator's speed probe request (`accel::speed_probe`).
    SpeedProbe,
}

impl Append {
    /// The command line.
    pub fn line(self) -> String {
        match self {
            Append::Words(w) => w.into(),
            Append::SpeedProbe => crate::accel::speed_probe().to_string(),
        }
    }
}

/// The stress boots of the suite: 4 CPUs, a fixed seed, this long.
pub const STRESS_CPUS: u32 = 4;
pub const STRESS_SEED: u64 = 1;
pub const STRESS_DURATION: Duration = Duration::from_secs(10);
/// A guard that must be caught may take this many boots (seeds
/// [`STRESS_SEED`], +1, +2, each [`STRESS_DURATION`]) before its case
/// fails: the races are probabilistic, and one boot of a rarely-failing
/// variant is a coin (collapse `r357091-before` at seed 0x1 ran clean once
/// on a slow CI machine, 234 window hits in 10 s). Only a clean boot earns
/// another try; any other result ends the case at once.
pub const STRESS_CATCH_BOOTS: u64 = 3;

/// The adaptive case: a small factor so that it decides in seconds.
pub const CONFIDENT_FACTOR: f64 = 2.0;
/// Its boots' length, its reference's failures and its budget.
pub const CONFIDENT_BOOT: Duration = Duration::from_secs(3);
pub const CONFIDENT_REFERENCE_FAILURES: u64 = 3;
pub const CONFIDENT_BUDGET: Duration = Duration::from_secs(90);

/// What a stress boot of the suite must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StressExpect {
    /// Caught by an oracle with one of these failure kinds.
    Caught(&'static [FailureKind]),
    /// Clean (verdict Pass) with the race window opened.
    CleanWithWindow,
}

impl StressExpect {
    /// What it expects, for a case's message.
    pub fn describe(self) -> String {
        match self {
            StressExpect::Caught(kinds) => format!(
                "a {} failure",
                kinds
                    .iter()
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            StressExpect::CleanWithWindow => "a clean run (Pass) with window hits > 0".into(),
        }
    }

    /// Whether a boot's result is what was expected.
    pub fn matches(self, r: &BootResult) -> bool {
        match self {
            StressExpect::Caught(kinds) => {
                r.outcome == Outcome::Caught
                    && r.failure.as_ref().is_some_and(|f| kinds.contains(&f.kind))
            }
            StressExpect::CleanWithWindow => {
                r.outcome == Outcome::Clean && r.verdict == "Pass" && r.window_hits() > 0
            }
        }
    }
}

impl From<scenarios::Expect> for StressExpect {
    fn from(e: scenarios::Expect) -> Self {
        match e {
            scenarios::Expect::Caught(kinds) => StressExpect::Caught(kinds),
            scenarios::Expect::CleanWithWindow => StressExpect::CleanWithWindow,
        }
    }
}

/// Boots a stress guard until it is decided: `boot(seed)` runs one boot of
/// seed [`STRESS_SEED`] + i. A guard that must be caught gets up to
/// [`STRESS_CATCH_BOOTS`] boots while they come out clean; anything else
/// (the expected result, a different failure, a hang, infra) ends it, and a
/// clean-with-window guard gets one boot. Returns every boot, the deciding
/// one last, and whether it matched.
pub fn boot_guard<T>(
    expect: StressExpect,
    mut boot: impl FnMut(u64) -> (BootResult, T),
) -> (Vec<(BootResult, T)>, bool) {
    let attempts = match expect {
        StressExpect::Caught(_) => STRESS_CATCH_BOOTS,
        StressExpect::CleanWithWindow => 1,
    };
    let mut boots = Vec::new();
    for i in 0..attempts {
        let (r, t) = boot(STRESS_SEED + i);
        let ok = expect.matches(&r);
        let again = !ok && r.outcome == Outcome::Clean;
        boots.push((r, t));
        if !again {
            return (boots, ok);
        }
    }
    (boots, false)
}

/// The suite's stress boots: every scenario's guards (for each, a variant
/// that must be caught and one that must run clean with its window open).
pub fn stress_guards() -> Vec<(Variant, StressExpect)> {
    ScenarioId::all()
        .flat_map(|s| {
            s.get().guards.iter().filter_map(move |g| {
                s.variant(g.variant)
                    .map(|v| (v, StressExpect::from(g.expect)))
            })
        })
        .collect()
}

/// One boot of the suite.
#[derive(Clone, Debug)]
pub enum Item {
    /// `mode=tests expect_cpus=N`.
    Tests { machine: Machine, cpus: u32 },
    /// A boot that must get one named verdict ([`CLASSIFY`]).
    Classify { machine: Machine, c: Classify },
    /// The accelerator probe.
    AccelAuto { machine: Machine, cpus: u32 },
    /// A short `mode=stress` run.
    Stress {
        machine: Machine,
        variant: Variant,
        expect: StressExpect,
    },
    /// An adaptive run ([`crate::adaptive`]) at [`CONFIDENT_FACTOR`]: the
    /// fix decided clean with the hits its bound needs.
    Confident { machine: Machine },
    /// [`harness::BOOTS`] `mode=probe` boots in a row leave nothing behind.
    HundredBoots { machine: Machine },
    /// A `compare` interrupted by SIGINT keeps what finished and leaves
    /// nothing behind; one killed by SIGKILL (`kill`) takes its QEMU with
    /// it and keeps its checkpoint.
    InterruptCompare { machine: Machine, kill: bool },
    /// `stress` and `compare` with the swap disk on a full file system.
    DiskFull { machine: Machine },
}

/// Name of the hundred-boots case.
pub const HUNDRED_CASE: &str = "harness/100-boots";
/// Name of the interrupted-compare case.
pub const INTERRUPT_CASE: &str = "harness/interrupt-compare";
/// Name of the SIGKILLed-compare case.
pub const KILL_CASE: &str = "harness/sigkill-compare";
/// Name of the full-file-system case.
pub const DISK_FULL_CASE: &str = "harness/disk-full";

impl Item {
    /// The names of the cases this boot produces.
    pub fn cases(&self) -> Vec<String> {
        match self {
            Item::Tests { machine, cpus } => {
                let p = format!("{machine}/{cpus}cpu");
                std::iter::once(format!("{p}/boot"))
                    .chain(KERNEL_TESTS.iter().map(|t| format!("{p}/{t}")))
                    .collect()
            }
            Item::Classify { machine, c } => vec![format!("{machine}/{}", c.case)],
            Item::AccelAuto { .. } => vec!["accel/auto".into()],
            Item::Stress {
                machine, variant, ..
            } => vec![format!(
                "{machine}/stress/{}/{variant}",
                variant.scenario().name
            )],
            Item::Confident { machine } => {
                vec![format!(
                    "{machine}/confident/{}",
                    stress::scenarios::d15293::SWAP_PREALLOC
                )]
            }
            Item::HundredBoots { .. } => vec![HUNDRED_CASE.into()],
            Item::InterruptCompare { kill: false, .. } => vec![INTERRUPT_CASE.into()],
            Item::InterruptCompare { kill: true, .. } => vec![KILL_CASE.into()],
            Item::DiskFull { .. } => vec![DISK_FULL_CASE.into()],
        }
    }
}

/// The boots of the suite: the default set, or everything on one machine.
pub fn plan(machine: Option<Machine>) -> Vec<Item> {
    let crash_machine = machine.unwrap_or(Machine::Microvm);
    let mut items = vec![Item::AccelAuto {
        machine: crash_machine,
        cpus: CRASH_CPUS,
    }];
    let tests: Vec<(Machine, u32)> = match machine {
        None => vec![
            (Machine::Microvm, 1),
            (Machine::Microvm, 2),
            (Machine::Microvm, 4),
            (Machine::Q35, 2),
        ],
        Some(m) => vec![(m, 1), (m, 2), (m, 4)],
    };
    items.extend(
        tests
            .into_iter()
            .map(|(machine, cpus)| Item::Tests { machine, cpus }),
    );
    items.extend(CLASSIFY.iter().map(|c| Item::Classify {
        machine: crash_machine,
        c: *c,
    }));
    items.extend(
        stress_guards()
            .into_iter()
            .map(|(variant, expect)| Item::Stress {
                machine: crash_machine,
                variant,
                expect,
            }),
    );
    items.push(Item::Confident {
        machine: crash_machine,
    });
    items.push(Item::HundredBoots {
        machine: crash_machine,
    });
    for kill in [false, true] {
        items.push(Item::InterruptCompare {
            machine: crash_machine,
            kill,
        });
    }
    items.push(Item::DiskFull {
        machine: crash_machine,
    });
    items
}

/// Name of the last case: no QEMU process of this runner left behind.
pub const ORPHAN_CASE: &str = "harness/no-orphan-qemu";

#[cfg(test)]
mod tests {
    use crate::testkit;

    fn guard_run(expect: StressExpect, outcomes: &[Outcome]) -> (Vec<u64>, bool) {
        let v = stress::scenarios::d15293::BASELINE;
        let mut it = outcomes.iter();
        let (boots, ok) = boot_guard(expect, |seed| {
            let o = *it.next().expect("more boots than outcomes given");
            let mut r = testkit::result(v, o, 5);
            r.seed = seed;
            if o == Outcome::Caught {
                r.verdict = "Fail".into();
                r.failure = Some(crate::stress_result::FailureInfo {
                    kind: FailureKind::StaleData,
                    cpu: 0,
                    ms: 10,
                    detail: String::new(),
                });
            }
            (r, ())
        });
        (boots.iter().map(|(r, _)| r.seed).collect(), ok)
    }

    #[test]
    fn a_caught_guard_boots_again_only_after_a_clean_boot() {
        let caught = StressExpect::Caught(&[FailureKind::StaleData]);
        use Outcome::*;
        assert_eq!(guard_run(caught, &[Caught]), (vec![1], true));
        assert_eq!(
            guard_run(caught, &[Clean, Clean, Caught]),
            (vec![1, 2, 3], true)
        );
        assert_eq!(
            guard_run(caught, &[Clean, Clean, Clean]),
            (vec![1, 2, 3], false)
        );
        assert_eq!(guard_run(caught, &[Clean, Hang]), (vec![1, 2], false));
        assert_eq!(guard_run(caught, &[Infra]), (vec![1], false));
        let clean = StressExpect::CleanWithWindow;
        assert_eq!(guard_run(clean, &[Clean]), (vec![1], true));
        assert_eq!(guard_run(clean, &[Caught]), (vec![1], false));
    }
    use super::*;
    use stress::scenarios::d15293;

    #[test]
    fn default_plan_has_the_contract_boots() {
        let names: Vec<String> = plan(None).iter().flat_map(Item::cases).collect();
        for n in [
            "accel/auto",
            "microvm/1cpu/boot",
            "microvm/2cpu/lock_counter",
            "microvm/4cpu/disk_roundtrip",
            "q35/2cpu/timer_ticks",
            "microvm/crash/pagefault",
            "microvm/crash/stackoverflow",
            "microvm/crash/triplefault",
            "microvm/crash/hang",
            "microvm/crash/hang-silent",
            "microvm/crash/garbage",
            "microvm/crash/early-exit",
            "microvm/crash/cut",
            "microvm/crash/exception",
            "microvm/crash/panic",
            "microvm/classify/disk-missing",
            "microvm/classify/qemu-missing-kernel",
            "microvm/classify/qemu-bad-option",
            "microvm/classify/qemu-paused",
            "microvm/stress/d15293/baseline",
            "microvm/stress/d15293/swap-prealloc",
            "microvm/confident/swap-prealloc",
            "harness/100-boots",
            "harness/interrupt-compare",
            "harness/sigkill-compare",
            "harness/disk-full",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        assert_eq!(names.len(), 1 + 4 * 5 + 14 + stress_guards().len() + 1 + 4);
        let q35: Vec<String> = plan(Some(Machine::Q35))
            .iter()
            .flat_map(Item::cases)
            .collect();
        assert!(
            q35.iter()
                .all(|n| n.starts_with("q35/") || n == "accel/auto" || n.starts_with("harness/")),
            "{q35:?}"
        );
    }

    #[test]
    fn stress_expectations() {
        use crate::stress_result::FailureInfo;
        use crate::testkit::result;
        let caught = |kind| {
            let mut r = result(d15293::BASELINE, Outcome::Caught, 1);
            r.failure = Some(FailureInfo {
                kind,
                cpu: 0,
                ms: 5,
                detail: String::new(),
            });
            r
        };
        let guards = stress_guards();
        assert!(guards.len() > ScenarioId::all().count(), "{guards:?}");
        let (base, fix) = (guards[0].1, guards[1].1);
        assert!(base.matches(&caught(FailureKind::Repopulated)));
        assert!(base.matches(&caught(FailureKind::DuplicatePage)));
        assert!(!base.matches(&caught(FailureKind::StaleData)));
        assert!(!base.matches(&result(d15293::BASELINE, Outcome::Clean, 3)));
        assert!(fix.matches(&result(d15293::SWAP_PREALLOC, Outcome::Clean, 3)));
        assert!(!fix.matches(&result(d15293::SWAP_PREALLOC, Outcome::Clean, 0)));
        assert!(!fix.matches(&result(d15293::SWAP_PREALLOC, Outcome::Infra, 3)));
        assert!(!fix.matches(&caught(FailureKind::Repopulated)));
    }
}
