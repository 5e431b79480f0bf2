//! Choosing the accelerator. `--accel auto` probes KVM for the requested
//! machine and CPU count and uses KVM only if the probe passes **and** KVM
//! is not slower than TCG; otherwise TCG (`-accel tcg,thread=multi`). On
//! this workplace KVM is software-nested: it may lack features or break SMP,
//! and where it works it runs this kernel's code far slower than TCG, so
//! the probe is per (machine, CPUs) and its result is cached for the run.
//!
//! KVM boots use the first CPU model of [`crate::qemu::KVM_CPUS`] that QEMU
//! accepts on this host ([`crate::boot::boot`] moves on when QEMU dies on
//! one), so a host where only `-cpu max` fails still gets KVM; the choice
//! line names the model.
//!
//! The probe is the boots of [`KVM_PROBES`], each of which must get its
//! verdict: every CPU must check in (as in `mode=probe`) and the local APIC
//! timer must tick on every CPU (a `mode=probe` boot passed under nested KVM
//! while the timer never fired, which hung every later boot); and a triple
//! fault must reset the guest (this nested KVM stops the guest with "KVM
//! internal error" instead, so a kernel that triple-faults could not be told
//! apart from an emulator failure). A probe boot takes ~0.1 s on microvm,
//! whether it passes or QEMU reports the stopped guest.
//!
//! When they pass, the speed probe ([`speed_probe`], a 300 ms stress run)
//! boots under TCG and then under KVM, and KVM is used only if its faults/s
//! are at least TCG's. The KVM run gets a few times TCG's wall time; if it
//! does not finish by then it is slower. One line on stderr gives the
//! choice and the figures that decided it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use stress::ScenarioId;
use stress::proto::StressRequest;

use crate::boot::{self, BootSpec};
use crate::qemu::{Accel, Machine};
use crate::verdict::Verdict;

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if its probe boots pass and it is not slower than TCG, else TCG.
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

/// The speed probe: a short stress run whose faults/s compare KVM with TCG.
pub fn speed_probe() -> StressRequest {
    StressRequest::new(ScenarioId::DEFAULT.bench_variant(), 1, 300)
}
/// Timeout of the TCG speed probe.
pub const SPEED_TIMEOUT_TCG: Duration = Duration::from_secs(30);

/// What a speed probe measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed {
    pub faults_per_s: f64,
    /// QEMU spawn to exit.
    pub wall: Duration,
}

/// How long the KVM speed probe may take, given TCG's: a few times TCG's
/// wall time (KVM that is slower than that has lost anyway).
pub fn kvm_speed_timeout(tcg: &Speed) -> Duration {
    (tcg.wall * 4 + Duration::from_secs(2)).min(Duration::from_secs(60))
}

/// The decision between KVM and TCG from the two speed probes.
pub fn decide_speed(tcg: &Speed, kvm: Result<Speed, String>) -> Resolved {
    let t = fmt_rate(tcg.faults_per_s);
    match kvm {
        Ok(k) if k.faults_per_s >= tcg.faults_per_s => Resolved {
            accel: Accel::Kvm,
            why: format!(
                "KVM probes passed and KVM is not slower on a 300 ms stress probe: {} faults/s vs {t} under TCG",
                fmt_rate(k.faults_per_s)
            ),
        },
        Ok(k) => Resolved {
            accel: Accel::Tcg,
            why: format!(
                "KVM probes passed, but KVM is slower on a 300 ms stress probe: {} faults/s vs {t} under TCG \
                 (boot to exit {:.1} s vs {:.1} s)",
                fmt_rate(k.faults_per_s),
                k.wall.as_secs_f64(),
                tcg.wall.as_secs_f64()
            ),
        },
        Err(e) => Resolved {
            accel: Accel::Tcg,
            why: format!(
                "KVM probes passed, but its 300 ms stress probe {e} (TCG: {t} faults/s, {:.1} s boot to exit)",
                tcg.wall.as_secs_f64()
            ),
        },
    }
}

/// `12345.6` → `12.3k`.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

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
    BootSpec::new(
        machine,
        cpus,
        accel,
        PROBE_APPEND.into(),
        probe_timeout(machine),
        kernel,
        qemu,
    )
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
                crate::note!("accel: {} for {machine}/{cpus}cpu ({})", r.accel, r.why);
                self.cache.insert((machine, cpus), r.clone());
                r
            }
        }
    }

    /// Runs the KVM probe without caching or printing.
    fn probe(&self, machine: Machine, cpus: u32) -> Resolved {
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
                        "KVM probe `{append}` with -cpu {} got {} instead of {expected}: {}",
                        boot::cpu_model(Accel::Kvm),
                        out.verdict(),
                        out.judgement.reason
                    ),
                };
            }
            let t = out.timings.exit.unwrap_or_default();
            seen.push(format!("{what} ok in {:.0} ms", t.as_secs_f64() * 1e3));
        }
        let tcg = match self.speed(machine, cpus, Accel::Tcg, SPEED_TIMEOUT_TCG) {
            Ok(s) => s,
            Err(e) => {
                return Resolved {
                    accel: Accel::Tcg,
                    why: format!(
                        "KVM probes passed ({}), but the speed comparison could not run: the TCG stress probe {e}",
                        seen.join(", ")
                    ),
                };
            }
        };
        let kvm = self.speed(machine, cpus, Accel::Kvm, kvm_speed_timeout(&tcg));
        let mut r = decide_speed(&tcg, kvm);
        r.why
            .push_str(&format!("; KVM with -cpu {}", boot::cpu_model(Accel::Kvm)));
        r
    }

    /// Boots [`speed_probe`] under `accel`; its faults/s, or what went wrong.
    fn speed(
        &self,
        machine: Machine,
        cpus: u32,
        accel: Accel,
        timeout: Duration,
    ) -> Result<Speed, String> {
        let spec = BootSpec {
            append: speed_probe().to_string(),
            timeout,
            ..probe_spec(machine, cpus, accel, self.kernel.clone(), self.qemu.clone())
        };
        let out = boot::boot(&spec, &mut |_| {});
        if *out.verdict() != Verdict::Pass {
            return Err(if out.exit == crate::verdict::Exit::TimedOut {
                format!("did not finish within {:.1} s", timeout.as_secs_f64())
            } else {
                format!("got {}: {}", out.verdict(), out.judgement.reason)
            });
        }
        match out.last_stats() {
            (Some(stats), Some(ms)) if ms > 0 => Ok(Speed {
                faults_per_s: stats.faults as f64 * 1e3 / ms as f64,
                wall: out.timings.exit.unwrap_or(timeout),
            }),
            _ => Err("reported no counters".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speed(faults_per_s: f64, secs: f64) -> Speed {
        Speed {
            faults_per_s,
            wall: Duration::from_secs_f64(secs),
        }
    }

    #[test]
    fn kvm_only_when_not_slower() {
        let tcg = speed(40_000.0, 0.8);
        let r = decide_speed(&tcg, Ok(speed(400.0, 9.0)));
        assert_eq!(r.accel, Accel::Tcg);
        assert!(
            r.why.contains("KVM is slower") && r.why.contains("400 faults/s vs 40.0k"),
            "{}",
            r.why
        );
        let r = decide_speed(&tcg, Ok(speed(40_000.0, 0.7)));
        assert_eq!(r.accel, Accel::Kvm, "{}", r.why);
        let r = decide_speed(&tcg, Err("did not finish within 5.2 s".into()));
        assert_eq!(r.accel, Accel::Tcg);
        assert!(r.why.contains("did not finish within 5.2 s"), "{}", r.why);
        assert_eq!(kvm_speed_timeout(&tcg), Duration::from_millis(5200));
        assert_eq!(
            kvm_speed_timeout(&speed(1.0, 100.0)),
            Duration::from_secs(60)
        );
        assert_eq!(fmt_rate(1_234_567.0), "1.2M");
    }
}
