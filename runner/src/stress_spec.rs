//! What one stress boot runs ([`StressSpec`]): the scenario variant, seed,
//! CPUs, duration, machine and accelerator; the `mode=stress` kernel command
//! line (through [`stress::proto::StressRequest`], the type the kernel parses
//! it with), its timeout, and the command that replays the boot. What the
//! boot found is judged in [`crate::stress_result`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use stress::proto::StressRequest;
use stress::{ScenarioId, Variant};

use crate::accel::{AccelChoice, Chooser, Resolved};
use crate::boot::BootSpec;
use crate::cli::StressBootArgs;
use crate::qemu::{Accel, Machine};
use crate::seed;

/// Time allowed beyond the stress duration under TCG: boot, set-up,
/// conservation audits and teardown (a few hundred ms alone, but several
/// QEMUs may share two host cores).
pub const MARGIN_TCG: Duration = Duration::from_secs(30);
/// The same under KVM (this machine's nested KVM is very slow).
pub const MARGIN_KVM: Duration = Duration::from_secs(120);

/// What one stress boot runs.
#[derive(Clone, Debug, PartialEq)]
pub struct StressSpec {
    pub variant: Variant,
    pub seed: u64,
    pub cpus: u32,
    /// How long the kernel stresses (`duration_ms`).
    pub duration: Duration,
    pub machine: Machine,
    /// The accelerator this boot uses.
    pub accel: Accel,
    /// `--accel` as the user gave it (repeated in the replay command).
    pub accel_flag: Option<AccelChoice>,
    /// `--kernel` as the user gave it (repeated in the replay command).
    pub kernel_flag: Option<PathBuf>,
    /// The workload steers toward the race window (`--steer`, `steer=1`).
    pub steer: bool,
}

/// The accelerator for stress boots with the options `b` (`auto` probes
/// once and says what it chose).
pub fn resolve_accel(b: &StressBootArgs, kernel: &Path, qemu: &Path) -> Resolved {
    Chooser::new(kernel.to_path_buf(), qemu.to_path_buf()).resolve(
        b.accel.unwrap_or(AccelChoice::Auto),
        b.machine,
        b.cpus,
    )
}

impl StressSpec {
    /// A boot of `variant`/`seed` with the shared stress options `b` on the
    /// accelerator resolved for them; `kernel_flag` is `--kernel` as given.
    pub fn from_args(
        b: &StressBootArgs,
        variant: Variant,
        seed: u64,
        accel: Accel,
        kernel_flag: Option<PathBuf>,
    ) -> Self {
        StressSpec {
            variant,
            seed,
            cpus: b.cpus,
            duration: b.seconds,
            machine: b.machine,
            accel,
            accel_flag: b.accel,
            kernel_flag,
            steer: b.steer.on(),
        }
    }

    /// `machine/Ncpu/accel`, as [`BootSpec::label`].
    pub fn label(&self) -> String {
        format!("{}/{}cpu/{}", self.machine, self.cpus, self.accel)
    }

    /// `duration_ms` for the kernel (at least 1).
    pub fn duration_ms(&self) -> u64 {
        (self.duration.as_secs_f64() * 1e3).round().max(1.0) as u64
    }

    /// The request the kernel runs.
    pub fn request(&self) -> StressRequest {
        StressRequest {
            knobs: stress::scenarios::Knobs { steer: self.steer },
            ..StressRequest::new(self.variant, self.seed, self.duration_ms())
        }
    }

    /// The kernel command line.
    pub fn append(&self) -> String {
        self.request().to_string()
    }

    /// The duration plus the margin of the accelerator.
    pub fn timeout(&self) -> Duration {
        self.duration
            + match self.accel {
                Accel::Tcg => MARGIN_TCG,
                Accel::Kvm => MARGIN_KVM,
            }
    }

    /// The boot engine's spec.
    pub fn boot_spec(&self, kernel: PathBuf, qemu: PathBuf) -> BootSpec {
        BootSpec::new(
            self.machine,
            self.cpus,
            self.accel,
            self.append(),
            self.timeout(),
            kernel,
            qemu,
        )
    }

    /// The command that runs this boot again: same variant, seed, CPUs,
    /// duration and machine (and `--accel`/`--kernel` when they were given).
    /// The workload is the same; the interleaving on real CPUs may differ.
    pub fn replay(&self) -> String {
        let mut s = String::from("cargo xtask");
        if let Some(k) = &self.kernel_flag {
            s.push_str(&format!(
                " --kernel {}",
                shell_word(&k.display().to_string())
            ));
        }
        s.push_str(" stress");
        let scenario = self.variant.scenario_id();
        if scenario != ScenarioId::DEFAULT {
            s.push_str(&format!(" --scenario {scenario}"));
        }
        s.push_str(&format!(
            " --variant {} --seed {} --cpus {} --seconds {} --machine {}",
            self.variant,
            seed::show(self.seed),
            self.cpus,
            secs_arg(self.duration),
            self.machine
        ));
        if let Some(a) = self.accel_flag {
            s.push_str(&format!(" --accel {a}"));
        }
        if !self.steer {
            s.push_str(" --steer off");
        }
        s
    }
}

/// Seconds as a command-line argument: `5`, `2.5`, `0.25`.
pub fn secs_arg(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}", ms / 1000)
    } else {
        let s = format!("{:.3}", d.as_secs_f64());
        s.trim_end_matches('0').to_string()
    }
}

/// A word for a shell command line, quoted when it needs to be.
fn shell_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
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

    #[test]
    fn kernel_command_line_and_timeout() {
        let s = spec();
        assert_eq!(
            s.append(),
            "mode=stress scenario=d15293 variant=baseline seed=0x2a duration_ms=5000"
        );
        assert_eq!(s.timeout(), Duration::from_secs(35));
        let s = StressSpec {
            duration: Duration::from_micros(100),
            accel: Accel::Kvm,
            ..spec()
        };
        assert_eq!(s.duration_ms(), 1);
        assert_eq!(s.timeout(), Duration::from_micros(100) + MARGIN_KVM);
    }

    #[test]
    fn replay_command_repeats_what_matters() {
        assert_eq!(
            spec().replay(),
            "cargo xtask stress --variant baseline --seed 0x2a --cpus 4 --seconds 5 --machine microvm"
        );
        let s = StressSpec {
            variant: d15293::SWAP_CLIP,
            seed: u64::MAX,
            cpus: 2,
            duration: Duration::from_millis(2500),
            machine: Machine::Q35,
            accel_flag: Some(AccelChoice::Tcg),
            kernel_flag: Some(PathBuf::from("/tmp/my kernel")),
            ..spec()
        };
        assert_eq!(
            s.replay(),
            "cargo xtask --kernel '/tmp/my kernel' stress --variant swap-clip --seed 0xffffffffffffffff \
             --cpus 2 --seconds 2.5 --machine q35 --accel tcg"
        );
        assert_eq!(secs_arg(Duration::from_millis(250)), "0.25");
        assert_eq!(secs_arg(Duration::from_secs(60)), "60");
    }
}
