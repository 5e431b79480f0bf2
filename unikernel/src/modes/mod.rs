//! What the kernel does once every CPU is up (`mode=` on the command line):
//! `probe`, `tests`, `crash`, `stress` and `diskbench`.
//!
//! The modes are plain users of the platform: they reach the hardware only
//! through the safe functions of `arch`, `drivers` and `mem`, so this module
//! and everything under it forbids `unsafe`. The deliberate crashes
//! (`mode=crash`) are dispatched from here but live in `crate::crash`,
//! outside the fence, because their unsafe is wrong on purpose.
#![forbid(unsafe_code)]

mod diskbench;
mod stress_mode;
mod tests;

use stress::proto::{ExitCode, Record, Verdict};

use crate::cmdline::{Cmdline, Mode};
use crate::{console, cpu, crash, qemu, time};

/// Prints `Done` with `verdict` and exits accordingly.
pub fn done(verdict: Verdict) -> ! {
    console::record(Record::Done {
        verdict,
        ms: time::now_ns() / 1_000_000,
        stats: None,
    });
    qemu::exit(match verdict {
        Verdict::Pass => ExitCode::Pass,
        Verdict::Fail => ExitCode::Fail,
    })
}

/// Runs the mode; `madt_cpus` is how many CPUs the MADT listed.
pub fn run(args: &Cmdline, madt_cpus: usize) -> ! {
    match &args.mode {
        Mode::Probe => {
            let all_up =
                cpu::count() == madt_cpus && args.expect_cpus.is_none_or(|n| n == cpu::count());
            done(if all_up { Verdict::Pass } else { Verdict::Fail })
        }
        Mode::Tests { tests } => {
            let passed = tests::run(tests, args.expect_cpus, madt_cpus);
            done(if passed { Verdict::Pass } else { Verdict::Fail })
        }
        Mode::Crash { kind, cpu } => crash::run(*kind, *cpu),
        Mode::Stress(stress) => stress_mode::run(stress),
        Mode::DiskBench { mib } => diskbench::run(*mib),
    }
}
