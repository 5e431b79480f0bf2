//! The one command-line definition of `cargo xtask` (clap derive). Every
//! subcommand's options live here; `crate::cmd` carries them out.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::accel::AccelChoice;
use crate::qemu::{self, Accel, Machine};

/// forkswap's host tool: builds the forkswap kernel, boots it under QEMU,
/// reads its serial console and judges every boot with a named verdict.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    after_help = "Exit status: 0 success, 1 a boot or test failed, 2 bad usage, 3 harness error \
                  (QEMU missing and not installable, kernel build failed, ...).\n\
                  Verdicts: Pass Fail Panic TripleFault Hang HangSilent Garbled Crashed QemuFailed Infra \
                  (see README.md)."
)]
pub struct Cli {
    /// Print QEMU command lines and every console line of every boot.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Boot this kernel image instead of building one (`cargo xtask build`).
    #[arg(long, global = true, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the kernel image (adds the x86_64-unknown-none target when missing).
    ///
    /// Runs `cargo build -p unikernel --target x86_64-unknown-none --release`
    /// (honouring CARGO_TARGET_DIR) and prints the image's path.
    Build,
    /// Boot the kernel once, stream its console, print the verdict.
    ///
    /// Records are shown as one-line summaries (use --raw for the lines as
    /// printed). The exit status follows the verdict: 0 Pass, 1 any other
    /// kernel verdict, 3 QemuFailed/Infra.
    Run(RunArgs),
    /// Run the host tests, then the boot tests under QEMU (KTAP on stdout).
    ///
    /// Host tests: `cargo test -p stress -p runner`. Boot tests: `mode=tests`
    /// with 1, 2 and 4 CPUs on microvm and 2 CPUs on q35, every deliberate
    /// crash kind (each must get exactly its expected verdict), the
    /// accelerator probe, and a check that no QEMU was left behind. Ends with
    /// one line `N passed, M failed`; exit 0 only if all passed.
    Test(TestArgs),
    /// Measurements.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The main job: stress the fork/swap-in race under every patch variant.
    ///
    /// Not implemented yet: for now it runs the boot tests (like
    /// `cargo xtask test --boot-only`) and says that the stress mode is coming.
    Stress(StressArgs),
}

/// Where and how to boot.
#[derive(Debug, Clone, Args)]
pub struct BootArgs {
    /// QEMU machine type.
    #[arg(long, value_enum, default_value_t = Machine::Microvm)]
    pub machine: Machine,
    /// Number of virtual CPUs (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=i64::from(qemu::MAX_CPUS)))]
    pub cpus: u32,
    /// Accelerator: auto probes KVM and falls back to TCG.
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Guest memory in MiB (64 to 16384).
    #[arg(long, value_name = "MIB", default_value_t = qemu::DEFAULT_MEM_MIB,
          value_parser = clap::value_parser!(u32).range(i64::from(qemu::MIN_MEM_MIB)..=i64::from(qemu::MAX_MEM_MIB)))]
    pub mem: u32,
    /// Kill QEMU after this many seconds (decimals allowed).
    #[arg(long, value_name = "S", default_value = "120", value_parser = parse_secs)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub boot: BootArgs,
    /// Show console lines exactly as printed instead of record summaries.
    #[arg(long)]
    pub raw: bool,
    /// Size of the swap disk in MiB (0 = no disk).
    #[arg(long, value_name = "MIB", default_value_t = crate::disk::DEFAULT_MIB,
          value_parser = clap::value_parser!(u64).range(0..=65536))]
    pub disk: u64,
    /// Kernel command line, space-separated key=value (default: mode=probe),
    /// e.g. `-- mode=tests expect_cpus=2` or `-- mode=crash kind=pagefault`.
    #[arg(last = true, value_name = "KERNEL-ARGS")]
    pub kernel_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Run only the cases whose name contains this text (e.g. `crash`, `q35`, `4cpu`).
    #[arg(long, value_name = "SUBSTR")]
    pub filter: Option<String>,
    /// Run the whole boot suite on this machine only (default: microvm, plus
    /// one q35 boot).
    #[arg(long, value_enum)]
    pub machine: Option<Machine>,
    /// Accelerator for the boots: auto probes KVM per (machine, CPUs).
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Skip the host tests (`cargo test -p stress -p runner`).
    #[arg(long)]
    pub boot_only: bool,
}

#[derive(Debug, Args)]
pub struct StressArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Boot `mode=probe` N times per (machine, accelerator) and print
    /// min/median/max of spawn→Ready and spawn→exit in ms.
    ///
    /// An accelerator whose first boot fails is reported as unavailable.
    Boot(BenchBootArgs),
}

#[derive(Debug, Args)]
pub struct BenchBootArgs {
    /// Boots per (machine, accelerator).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub boots: u32,
    /// Machines to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "microvm,q35")]
    pub machines: Vec<Machine>,
    /// Accelerators to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "tcg,kvm")]
    pub accels: Vec<Accel>,
    /// Number of virtual CPUs (1 to 64).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=i64::from(qemu::MAX_CPUS)))]
    pub cpus: u32,
}

/// Parses a positive number of seconds (`3`, `2.5`).
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!("{s} is not in (0, 86400] seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["cargo xtask", "run", "--cpus", "0"][..],
            &["cargo xtask", "run", "--cpus", "65"],
            &["cargo xtask", "run", "--mem", "16"],
            &["cargo xtask", "run", "--timeout", "0"],
            &["cargo xtask", "run", "--machine", "pc"],
            &["cargo xtask", "bench", "boot", "--accels", "hvf"],
            &["cargo xtask", "frobnicate"],
        ] {
            let e = Cli::try_parse_from(args).expect_err(&format!("{args:?}"));
            assert_eq!(e.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn good_values_parse() {
        let c = Cli::try_parse_from([
            "cargo xtask",
            "run",
            "--cpus",
            "64",
            "--machine",
            "q35",
            "--timeout",
            "2.5",
            "--",
            "mode=tests",
            "expect_cpus=64",
        ])
        .expect("parses");
        let Command::Run(r) = c.command else {
            panic!("not run")
        };
        assert_eq!(r.boot.cpus, 64);
        assert_eq!(r.boot.timeout, Duration::from_millis(2500));
        assert_eq!(r.kernel_args, ["mode=tests", "expect_cpus=64"]);
        let c = Cli::try_parse_from([
            "cargo xtask",
            "bench",
            "boot",
            "--machines",
            "q35",
            "--accels",
            "kvm,tcg",
        ])
        .expect("parses");
        let Command::Bench(BenchCommand::Boot(b)) = c.command else {
            panic!("not bench")
        };
        assert_eq!(b.accels, [Accel::Kvm, Accel::Tcg]);
        assert_eq!(b.machines, [Machine::Q35]);
    }
}
