//! Runs the boot test suite: each planned item ([`crate::suite_plan`]) is
//! booted (or, for the harness checks, exercised) and its cases are reported
//! through [`crate::suite_cases`].

use std::time::{Duration, Instant};

use crate::accel::{self, AccelChoice, Chooser};
use crate::boot::{self, BootOutcome, BootSpec};
use crate::harness;
use crate::qemu::Machine;
use crate::reaper;
use crate::render;
use crate::report::{CaseResult, Ktap};
use crate::stress_result::{BootResult, Outcome};
use crate::stress_spec::StressSpec;
use crate::suite_cases::{boot_case, evidence_missing, kernel_test_case};
use crate::suite_plan::*;
use crate::verdict::Verdict;
use stress::Variant;

/// Runs the suite's boots and reports each case.
pub struct Suite<'a> {
    pub chooser: &'a mut Chooser,
    pub accel: AccelChoice,
    pub kernel: std::path::PathBuf,
    pub qemu: std::path::PathBuf,
    pub verbose: bool,
}

impl Suite<'_> {
    /// Runs one boot and reports the selected cases among its own.
    pub fn run_item(&mut self, item: &Item, selected: &dyn Fn(&str) -> bool, ktap: &mut Ktap) {
        match item {
            Item::AccelAuto { machine, cpus } => self.accel_auto(*machine, *cpus, ktap),
            Item::Tests { machine, cpus } => {
                let append = format!("mode=tests expect_cpus={cpus}");
                let (out, time) = self.boot(*machine, *cpus, &append, TESTS_TIMEOUT, ktap);
                let names = item.cases();
                let boot_name = &names[0];
                if selected(boot_name) {
                    ktap.case(boot_case(boot_name, &out, time));
                }
                for (name, test) in names[1..].iter().zip(KERNEL_TESTS) {
                    if selected(name) {
                        ktap.case(kernel_test_case(name, test, &out));
                    }
                }
                for r in out
                    .ktap()
                    .results
                    .iter()
                    .filter(|r| !KERNEL_TESTS.contains(&r.name.as_str()))
                {
                    ktap.diag(&format!(
                        "kernel test {} is not in the runner's list: {}",
                        r.name,
                        if r.failed() { "not ok" } else { "ok" }
                    ));
                }
            }
            Item::Stress {
                machine,
                variant,
                expect,
            } => self.stress(item, *machine, *variant, *expect, ktap),
            Item::Classify { machine, c } => self.classify(item, *machine, c, ktap),
            Item::Confident { machine } => self.confident(item, *machine, ktap),
            Item::HundredBoots { machine } => {
                let spec = self.spec(*machine, 1, crate::accel::PROBE_APPEND, CRASH_TIMEOUT);
                ktap.diag(&format!(
                    "{} boots of {}: {}",
                    harness::BOOTS,
                    spec.label(),
                    spec.append
                ));
                ktap.case(harness::hundred_boots(HUNDRED_CASE, &spec));
            }
            Item::InterruptCompare { machine, kill } => {
                let accel = self.chooser.resolve(self.accel, *machine, 1).accel;
                let setup = harness::InterruptSetup {
                    // This very binary, even if `cargo test` (the host
                    // tests) has rebuilt the file it was started from.
                    runner: "/proc/self/exe".into(),
                    kernel: self.kernel.clone(),
                    accel,
                };
                let (name, sig) = if *kill {
                    ktap.diag("compare of 2 variants × 3 boots, SIGKILL during the second");
                    (KILL_CASE, nix::sys::signal::Signal::SIGKILL)
                } else {
                    ktap.diag("compare of 2 variants × 3 boots, SIGINT after 2");
                    (INTERRUPT_CASE, nix::sys::signal::Signal::SIGINT)
                };
                ktap.case(harness::interrupted_compare(name, &setup, sig));
            }
            Item::DiskFull { machine } => {
                let setup = harness::InterruptSetup {
                    runner: "/proc/self/exe".into(),
                    kernel: self.kernel.clone(),
                    accel: self.chooser.resolve(self.accel, *machine, 1).accel,
                };
                ktap.diag("stress and compare with TMPDIR on a 1 MiB tmpfs");
                ktap.case(harness::disk_full(DISK_FULL_CASE, &setup));
            }
        }
    }

    fn confident(&mut self, item: &Item, machine: Machine, ktap: &mut Ktap) {
        use crate::adaptive::{self, Qemu, Settings};
        use crate::confidence::Decision;
        let resolved = self.chooser.resolve(self.accel, machine, STRESS_CPUS);
        let spec = StressSpec {
            variant: stress::scenarios::d15293::BASELINE,
            seed: STRESS_SEED,
            cpus: STRESS_CPUS,
            duration: CONFIDENT_BOOT,
            machine,
            accel: resolved.accel,
            accel_flag: (self.accel != AccelChoice::Auto).then_some(self.accel),
            kernel_flag: None,
            steer: true,
        };
        let s = Settings {
            variants: vec![
                stress::scenarios::d15293::BASELINE,
                stress::scenarios::d15293::SWAP_PREALLOC,
            ],
            reference: stress::scenarios::d15293::BASELINE,
            factor: CONFIDENT_FACTOR,
            budget: CONFIDENT_BUDGET,
            variant_budget: None,
            reference_failures: CONFIDENT_REFERENCE_FAILURES,
            seed_base: STRESS_SEED,
            shard: None,
            jobs: 1,
        };
        ktap.diag(&format!(
            "compare --until-confident --factor {CONFIDENT_FACTOR} of baseline and swap-prealloc, \
             boots of {} s on {machine}/{STRESS_CPUS}cpu/{}",
            CONFIDENT_BOOT.as_secs_f64(),
            resolved.accel
        ));
        let booter = Qemu {
            spec,
            kernel: self.kernel.clone(),
            qemu: self.qemu.clone(),
        };
        let t = Instant::now();
        let mut lines = Vec::new();
        let run = adaptive::run(
            &s,
            &booter,
            &mut |b| {
                lines.push(format!(
                    "{}{}",
                    crate::cmd::compare::boot_line(b),
                    b.ended
                        .map_or(String::new(), |e| format!(" (ended: {})", e.name()))
                ))
            },
            &|| reaper::interrupted().is_some(),
        );
        for l in &lines {
            ktap.diag(l);
        }
        let c = adaptive::judge(&s, &run.boots);
        let fix = c
            .decisions
            .iter()
            .find(|d| d.variant == stress::scenarios::d15293::SWAP_PREALLOC);
        let base = c
            .decisions
            .iter()
            .find(|d| d.variant == stress::scenarios::d15293::BASELINE);
        // The hits the kernel itself reported in the fix's boots.
        let kernel_hits: u64 = run
            .boots
            .iter()
            .filter(|b| {
                b.variant == stress::scenarios::d15293::SWAP_PREALLOC && b.outcome != Outcome::Infra
            })
            .map(BootResult::window_hits)
            .sum();
        let (ok, message) = match (fix, base) {
            (Some(f), Some(b)) => {
                let need = f.claim.hits_needed;
                let ok = f.claim.decision == Decision::Clean
                    && b.claim.decision == Decision::Caught
                    && f.claim.hits == kernel_hits
                    && need.is_some_and(|n| n > 0 && kernel_hits >= n);
                (
                    ok,
                    format!(
                        "swap-prealloc: {} (its boots reported {kernel_hits} window hits, the bound needs {}); baseline: {}",
                        f.claim.text,
                        need.map_or("-".into(), |n| n.to_string()),
                        b.claim.text
                    ),
                )
            }
            _ => (false, "no decision for swap-prealloc or baseline".into()),
        };
        ktap.case(CaseResult {
            name: item.cases().remove(0),
            ok,
            message: if ok {
                message
            } else {
                format!("expected swap-prealloc clean at {CONFIDENT_FACTOR}× with the hits its bound needs, got: {message}")
            },
            details: lines.join("\n"),
            time: t.elapsed(),
        });
    }

    fn classify(&mut self, item: &Item, machine: Machine, c: &Classify, ktap: &mut Ktap) {
        let mut spec = self.spec(machine, CRASH_CPUS, &c.append.line(), c.timeout);
        match c.setup {
            Setup::Normal => {}
            Setup::NoDisk => spec.disk_bytes = None,
            Setup::MissingKernel => spec.kernel = MISSING_KERNEL.into(),
            Setup::BadMachineOption => {
                spec.qemu_extra =
                    vec!["-M".into(), format!("{machine},forkswap-no-such-option=on")];
            }
            Setup::Paused => spec.qemu_extra = vec!["-S".into()],
        }
        let (out, time) = self.run_spec(&spec, ktap);
        let shown = render::outcome(&out);
        let missing = evidence_missing(&out, &shown);
        let ok = c.expect.matches(&out) && missing.is_none();
        let seen = format!("{}: {}", out.verdict(), out.judgement.reason);
        ktap.case(CaseResult {
            name: item.cases().remove(0),
            ok,
            message: match (&missing, c.expect.matches(&out)) {
                (_, false) => format!("expected {}, got {seen}", c.expect.describe()),
                (Some(m), true) => format!("{seen}; but the verdict block does not show {m}"),
                (None, true) => seen,
            },
            details: if ok { String::new() } else { shown },
            time,
        });
    }

    /// The spec of a boot of the suite: the built kernel, a swap disk,
    /// the accelerator chosen for (machine, CPUs).
    fn spec(&mut self, machine: Machine, cpus: u32, append: &str, timeout: Duration) -> BootSpec {
        let accel = self.chooser.resolve(self.accel, machine, cpus).accel;
        BootSpec::new(
            machine,
            cpus,
            accel,
            append.into(),
            timeout,
            self.kernel.clone(),
            self.qemu.clone(),
        )
    }

    fn boot(
        &mut self,
        machine: Machine,
        cpus: u32,
        append: &str,
        timeout: Duration,
        ktap: &mut Ktap,
    ) -> (BootOutcome, Duration) {
        let spec = self.spec(machine, cpus, append, timeout);
        self.run_spec(&spec, ktap)
    }

    fn run_spec(&self, spec: &BootSpec, ktap: &mut Ktap) -> (BootOutcome, Duration) {
        ktap.diag(&format!("boot {}: {}", spec.label(), spec.append));
        let verbose = self.verbose;
        let t = Instant::now();
        let out = boot::boot(spec, &mut |l| {
            if verbose {
                println!("# | {}", render::console_line(l, false));
            }
        });
        if verbose {
            ktap.diag(&format!("command: {}", out.command));
        }
        (out, t.elapsed())
    }

    fn stress(
        &mut self,
        item: &Item,
        machine: Machine,
        variant: Variant,
        expect: StressExpect,
        ktap: &mut Ktap,
    ) {
        let resolved = self.chooser.resolve(self.accel, machine, STRESS_CPUS);
        let (boots, ok) = boot_guard(expect, |seed| {
            let spec = StressSpec {
                variant,
                seed,
                cpus: STRESS_CPUS,
                duration: STRESS_DURATION,
                machine,
                accel: resolved.accel,
                accel_flag: (self.accel != AccelChoice::Auto).then_some(self.accel),
                kernel_flag: None,
                steer: true,
            };
            let bspec = spec.boot_spec(self.kernel.clone(), self.qemu.clone());
            let (out, t) = self.run_spec(&bspec, ktap);
            let r = BootResult::from_outcome(&spec, &out, t);
            (r, (out, t))
        });
        let time = boots.iter().map(|(_, (_, t))| *t).sum();
        let attempt = boots.len();
        let earlier: Vec<String> = boots[..attempt - 1]
            .iter()
            .map(|(r, _)| format!("seed {:#x} clean, {} window hits", r.seed, r.window_hits()))
            .collect();
        let (r, (out, _)) = boots.last().expect("a guard boots at least once");
        let mut seen = format!(
            "{} ({}, {} window hits): {}",
            r.outcome,
            r.verdict,
            r.window_hits(),
            r.reason
        );
        if matches!(expect, StressExpect::Caught(_)) {
            seen.push_str(&format!(" [boot {attempt} of at most {STRESS_CATCH_BOOTS}"));
            if !earlier.is_empty() {
                seen.push_str(&format!("; before it: {}", earlier.join("; ")));
            }
            seen.push(']');
        }
        ktap.case(CaseResult {
            name: item.cases().remove(0),
            ok,
            message: if ok {
                seen
            } else {
                format!("expected {}, got {seen}", expect.describe())
            },
            details: if ok {
                format!("replay: {}", r.replay)
            } else {
                format!("replay: {}\n{}", r.replay, render::details(out, ""))
            },
            time,
        });
    }

    fn accel_auto(&mut self, machine: Machine, cpus: u32, ktap: &mut Ktap) {
        let t = Instant::now();
        let r = self.chooser.resolve(AccelChoice::Auto, machine, cpus);
        let said = format!(
            "--accel auto chose {} for {machine}/{cpus}cpu: {}",
            r.accel, r.why
        );
        ktap.diag(&said);
        let spec = accel::probe_spec(
            machine,
            cpus,
            r.accel,
            self.kernel.clone(),
            self.qemu.clone(),
        );
        let out = boot::boot(&spec, &mut |_| {});
        let ok = *out.verdict() == Verdict::Pass;
        ktap.case(CaseResult {
            name: "accel/auto".into(),
            ok,
            message: if ok {
                format!("{said}; probe boot under {} passed", r.accel)
            } else {
                format!(
                    "{said}; but a probe boot under {} got {}: {}",
                    r.accel,
                    out.verdict(),
                    out.judgement.reason
                )
            },
            details: if ok {
                String::new()
            } else {
                render::details(&out, "")
            },
            time: t.elapsed(),
        });
    }
}
