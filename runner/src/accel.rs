//! Choosing the accelerator. `--accel auto` probes KVM for the requested
//! machine and CPU count and uses KVM only if the probe passes; otherwise
//! TCG (`-accel tcg,thread=multi`). On this workplace KVM is software-nested:
//! it may lack features or break SMP, so the probe is per (machine, CPUs)
//! and its result is cached for the run.
//!
//! The probe is the boots of [`KVM_PROBES`], each of which must get its
//! verdict: every CPU must check in (as in `mode=probe`) and the local APIC
//! timer must tick on every CPU (a `mode=probe` boot passed under nested KVM
//! while the timer never fired, which hung every later boot); and a triple
//! fault must reset the guest (this nested KVM stops the guest with "KVM
//! internal error" instead, so a kernel that triple-faults could not be told
//! apart from an emulator failure). A probe boot takes ~0.1 s on microvm,
//! whether it passes or QEMU reports the stopped guest.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::boot::{self, BootSpec};
use crate::disk;
use crate::qemu::{Accel, DEFAULT_MEM_MIB, Machine};
use crate::verdict::Verdict;

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if a probe boot under KVM passes, else TCG.
    Auto,
    /// Always KVM.
    Kvm,
    /// Always TCG (multi-threaded).
    Tcg,
}

impl fmt::Display for AccelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccelChoice::Auto => "auto",
            AccelChoice::Kvm => "kvm",
            AccelChoice::Tcg => "tcg",
        })
    }
}

/// The kernel command line of `bench boot` and of the boot that confirms a choice.
pub const PROBE_APPEND: &str = "mode=probe";
/// The KVM probe boots: kernel command line, the verdict it must get, and
/// what it shows (see the module documentation).
pub const KVM_PROBES: [(&str, Verdict, &str); 2] = [
    (
        "mode=tests tests=timer_ticks",
        Verdict::Pass,
        "CPUs and timers",
    ),
    (
        "mode=crash kind=triplefault",
        Verdict::TripleFault,
        "triple fault",
    ),
];

/// Timeout of one probe boot: q35's firmware alone takes ~3 s under nested
/// KVM, microvm boots in well under a second.
pub fn probe_timeout(machine: Machine) -> Duration {
    match machine {
        Machine::Microvm => Duration::from_secs(5),
        Machine::Q35 => Duration::from_secs(15),
    }
}

/// The accelerator chosen and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub accel: Accel,
    pub why: String,
}

/// Resolves accelerator choices, probing each (machine, CPUs) once.
#[derive(Debug)]
pub struct Chooser {
    kernel: PathBuf,
    qemu: PathBuf,
    cache: HashMap<(Machine, u32), Resolved>,
}

/// A probe boot's spec.
pub fn probe_spec(
    machine: Machine,
    cpus: u32,
    accel: Accel,
    kernel: PathBuf,
    qemu: PathBuf,
) -> BootSpec {
    BootSpec {
        machine,
        cpus,
        mem_mib: DEFAULT_MEM_MIB,
        accel,
        append: PROBE_APPEND.into(),
        disk_bytes: Some(disk::DEFAULT_MIB << 20),
        timeout: probe_timeout(machine),
        kernel,
        qemu,
    }
}

impl Chooser {
    pub fn new(kernel: PathBuf, qemu: PathBuf) -> Self {
        Chooser {
            kernel,
            qemu,
            cache: HashMap::new(),
        }
    }

    /// The accelerator for a boot on `machine` with `cpus` CPUs. For `auto`
    /// the first call per (machine, CPUs) runs a probe and prints one line
    /// on stderr saying which accelerator was chosen and why.
    pub fn resolve(&mut self, choice: AccelChoice, machine: Machine, cpus: u32) -> Resolved {
        match choice {
            AccelChoice::Kvm => Resolved {
                accel: Accel::Kvm,
                why: "--accel kvm".into(),
            },
            AccelChoice::Tcg => Resolved {
                accel: Accel::Tcg,
                why: "--accel tcg".into(),
            },
            AccelChoice::Auto => {
                if let Some(r) = self.cache.get(&(machine, cpus)) {
                    return r.clone();
                }
                let r = self.probe(machine, cpus);
                eprintln!("accel: {} for {machine}/{cpus}cpu ({})", r.accel, r.why);
                self.cache.insert((machine, cpus), r.clone());
                r
            }
        }
    }

    /// Runs the KVM probe without caching or printing.
    pub fn probe(&self, machine: Machine, cpus: u32) -> Resolved {
        if let Err(e) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
        {
            return Resolved {
                accel: Accel::Tcg,
                why: format!("no usable /dev/kvm: {e}"),
            };
        }
        let mut seen = Vec::new();
        for (append, expected, what) in KVM_PROBES {
            let spec = BootSpec {
                append: append.into(),
                ..probe_spec(
                    machine,
                    cpus,
                    Accel::Kvm,
                    self.kernel.clone(),
                    self.qemu.clone(),
                )
            };
            let out = boot::boot(&spec, &mut |_| {});
            if *out.verdict() != expected {
                return Resolved {
                    accel: Accel::Tcg,
                    why: format!(
                        "KVM probe `{append}` got {} instead of {expected}: {}",
                        out.verdict(),
                        out.judgement.reason
                    ),
                };
            }
            let t = out.timings.exit.unwrap_or_default();
            seen.push(format!("{what} ok in {:.0} ms", t.as_secs_f64() * 1e3));
        }
        Resolved {
            accel: Accel::Kvm,
            why: format!("KVM probes passed: {}", seen.join(", ")),
        }
    }
}
