//! Choosing the accelerator. `--accel auto` boots the kernel once with
//! `mode=probe` under KVM for the requested machine and CPU count, and uses
//! KVM only if that probe passes; otherwise TCG (`-accel tcg,thread=multi`).
//! On this workplace KVM is software-nested: it may lack features or break
//! SMP, so the probe is per (machine, CPUs) and its result is cached.

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

/// Timeout of one probe boot (q35 firmware alone takes ~3 s under nested KVM).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The kernel command line of a probe boot.
pub const PROBE_APPEND: &str = "mode=probe";

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
        timeout: PROBE_TIMEOUT,
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
        let spec = probe_spec(
            machine,
            cpus,
            Accel::Kvm,
            self.kernel.clone(),
            self.qemu.clone(),
        );
        let out = boot::boot(&spec, &mut |_| {});
        if *out.verdict() == Verdict::Pass {
            let ms = |d: Option<Duration>| {
                d.map_or("?".into(), |d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
            };
            Resolved {
                accel: Accel::Kvm,
                why: format!(
                    "KVM probe passed: Ready at {}, exit at {}",
                    ms(out.timings.ready),
                    ms(out.timings.exit)
                ),
            }
        } else {
            Resolved {
                accel: Accel::Tcg,
                why: format!(
                    "KVM probe failed: {}: {}",
                    out.verdict(),
                    out.judgement.reason
                ),
            }
        }
    }
}
