//! The one command-line definition of `cargo xtask` (clap derive). Every
//! subcommand's options live here; `crate::cmd` carries them out.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use stress::{ScenarioId, Variant};

use crate::accel::AccelChoice;
use crate::error::{Error, Result};
use crate::qemu::{self, Accel, Machine};

/// forkswap's host tool: builds the forkswap kernel, boots it under QEMU,
/// reads its serial console and judges every boot with a named verdict.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    after_help = "Exit status: 0 success, 1 a failure was found (a boot or test failed; `stress` \
                  caught a failure or a hang), 2 bad usage, 3 harness error (QEMU missing and not \
                  installable, kernel build failed, kernel panic in `stress`, ...), 4 `stress` \
                  was inconclusive (clean, but the race window never opened), 130/143 \
                  interrupted by SIGINT/SIGTERM (`stress` and `compare` first write what finished), \
                  141 standard output closed (`... | head`). \
                  `compare` exits 0 when every boot ran: its findings are results.\n\
                  Environment: FORKSWAP_QEMU=PATH boots with this QEMU binary.\n\
                  Verdicts: Pass Fail Panic Exception DiskMissing TripleFault Hang HangSilent Garbled \
                  EarlyExit Crashed QemuFailed Infra \
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
    /// Host tests: `cargo test -p stress -p runner -p unikernel`. Boot tests: `mode=tests`
    /// with 1, 2 and 4 CPUs on microvm and 2 CPUs on q35, every deliberate
    /// crash kind (each must get exactly its expected verdict), the
    /// accelerator probe, every scenario's stress guards (4 CPUs, 10 s; a
    /// variant that must be caught gets up to 3 boots, seeds 1..=3, while
    /// they run clean; a fixed one must run clean with its window open in
    /// one), and a check that no QEMU was left behind. Ends with
    /// one line `N passed, M failed`; exit 0 only if all passed.
    Test(TestArgs),
    /// Measurements.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The main job: boot `mode=stress` once and hunt the fork/swap-in race.
    ///
    /// Boots the kernel on N virtual CPUs running the stress workload of one
    /// patch variant and seed for S seconds, shows a live status line on
    /// stderr, then prints the verdict. When an oracle fires it prints the
    /// failure kind, seed, CPU, time to detection, the interleaving of every
    /// CPU's last trace events and the command that runs the same seed again.
    ///
    /// Exit status: 0 clean, 1 a failure was found (oracle Failure or hang),
    /// 2 bad usage, 3 harness error (QEMU failed or silent, kernel panic,
    /// garbled console, swap disk full or failing), 4 inconclusive (clean,
    /// but the race window never opened: 0 window hits), 130/143
    /// interrupted (the last counters are printed and written to --json).
    #[command(after_help = variants_help())]
    Stress(StressArgs),
    /// Run the variant × boot matrix and compare the variants.
    ///
    /// Boot i of every variant uses seed `seed_base + i`, so the variants are
    /// compared on the same seeds. Several QEMUs run at once (--jobs). Prints
    /// one row per variant: boots, failed boots, failure rate with its 95%
    /// Wilson interval, failure kinds, hangs, median time to first failure,
    /// window hits, wasted/discarded/leaked pages, faults/s, forks/s and a
    /// verdict (caught, clean, inconclusive, hangs, mixed, error). A variant
    /// is `inconclusive`, never `clean`, when the race window did not open in
    /// some boot or some boot did not run.
    ///
    /// SIGINT/SIGTERM kills every QEMU, keeps the boots that finished and
    /// writes the reports (JSON marked interrupted) before exiting 130/143;
    /// --json is also checkpointed after every boot.
    ///
    /// Exit status: 0 every boot ran (findings are results, not errors),
    /// 2 bad usage, 3 some boot hit an infrastructure error, 130/143
    /// interrupted.
    #[command(after_help = variants_help())]
    Compare(CompareArgs),
    /// Fuzz the console classification for a long time.
    ///
    /// Feeds N generated inputs (valid consoles, damaged ones, random byte
    /// edits; any exit status, timeouts, arbitrary pipe reads) through the
    /// runner's whole console path and checks its properties: no panic, a
    /// valid console passes, a damaged one never does, and `Pass` agrees
    /// with an independent statement of the rules. Runs the ignored test
    /// `long_fuzz` of `runner/tests/console_fuzz.rs` in release mode
    /// (`cargo test` runs a short fixed-seed run).
    ///
    /// Exit status: 0 every input kept every property, 1 one did not (the
    /// smallest failing input is printed).
    Fuzz(FuzzArgs),
    /// List every scenario: its references, window, oracles and variants
    /// (name, summary, the sites each touches).
    ///
    /// Exit status: 0.
    Scenarios,
    /// Merge the JSON reports of `compare --shard I/N` runs into one.
    ///
    /// The reports must be the shards of one plan (same variants, boots,
    /// seconds, CPUs, seed base, machine, accelerator and kernel), none
    /// interrupted, and together cover the plan exactly once. The merged
    /// report holds every boot in plan order and summaries computed again
    /// from them: the same as one run of the whole plan.
    ///
    /// Exit status: 0 merged, 2 the reports are not the shards of one plan
    /// (one line says why), 3 the output cannot be written.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' `compare --json` reports.
    #[arg(value_name = "REPORT.json", required = true)]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged report (atomically).
    #[arg(long, value_name = "PATH")]
    pub json: PathBuf,
}

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Inputs to try (1 to 4294967295).
    #[arg(long, value_name = "N", default_value_t = 10_000_000,
          value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    pub cases: u64,
    /// Seed of the input generator, decimal or 0x-hex.
    #[arg(long, value_name = "X", default_value = "1", value_parser = crate::seed::parse)]
    pub seed: u64,
}

/// The scenarios and their variants, for `--help`.
pub fn variants_help() -> String {
    let mut s = String::from("Scenarios (--scenario) and their variants (--variant):\n");
    for sc in ScenarioId::all() {
        let def = if sc == ScenarioId::DEFAULT {
            " [default]"
        } else {
            ""
        };
        s.push_str(&format!("  {}{def}: {}\n", sc.name(), sc.get().title));
        for v in sc.variants() {
            s.push_str(&format!("    {:<22}{}\n", v.name(), v.summary()));
        }
    }
    s
}

/// Parses a scenario name (the error lists the valid ones).
pub fn parse_scenario(s: &str) -> Result<ScenarioId, String> {
    s.parse::<ScenarioId>().map_err(|e| e.to_string())
}

/// The variant `name` of `scenario` (None: its default), or a usage error
/// naming the valid ones.
pub fn variant_of(scenario: ScenarioId, name: Option<&str>, default: Variant) -> Result<Variant> {
    match name {
        None => Ok(default),
        Some(n) => scenario.variant_or_err(n.trim()).map_err(Error::usage),
    }
}

/// Parses `all` or a comma-separated list of `scenario`'s variants
/// (duplicates dropped); the error names the valid ones.
pub fn parse_variants(scenario: ScenarioId, s: &str) -> Result<Vec<Variant>> {
    if s.trim() == "all" {
        return Ok(scenario.variants().collect());
    }
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(Error::usage(format!(
                "empty variant name in '{s}' (valid: all, {})",
                scenario.valid_names()
            )));
        }
        let v = scenario.variant_or_err(name).map_err(Error::usage)?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Parses the stress duration in seconds: more than 0 (at least 1 ms), at most a day.
pub fn parse_stress_secs(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s)?;
    if d < Duration::from_millis(1) {
        return Err(format!("{s} s is shorter than 1 ms"));
    }
    Ok(d)
}

/// The host's CPU count.
pub fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default of `compare --jobs`: as many boots as the host has cores for
/// all their vCPUs, at least one.
pub fn default_jobs(host_cpus: usize, vcpus: u32) -> usize {
    (host_cpus / vcpus.max(1) as usize).max(1)
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
    /// Skip the host tests (`cargo test -p stress -p runner -p unikernel`).
    #[arg(long)]
    pub boot_only: bool,
}

/// `--events N`: a count of events, 0 for all.
fn parse_events(s: &str) -> Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s} is not a number of events (0 or more; 0 shows all)"))
}

/// Where and what to stress: shared by `stress`, `compare` and `bench stress`.
#[derive(Debug, Clone, Args)]
pub struct StressBootArgs {
    /// Virtual CPUs (1 to 64, the most either machine and the kernel take).
    #[arg(long, value_name = "N", default_value_t = 4, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(qemu::MAX_CPUS)))]
    pub cpus: u32,
    /// How long the kernel stresses, in seconds (decimals allowed).
    #[arg(long, value_name = "S", default_value = "5", allow_negative_numbers = true,
          value_parser = parse_stress_secs)]
    pub seconds: Duration,
    /// QEMU machine type.
    #[arg(long, value_enum, default_value_t = Machine::Microvm)]
    pub machine: Machine,
    /// Accelerator [default: auto].
    #[arg(long, value_enum)]
    pub accel: Option<AccelChoice>,
    /// Steer the workload toward the race window (the fork loop forks when
    /// a fault waits in getpages on the parent's object); `off` keeps the
    /// random workload. Blind to the variant.
    #[arg(long, value_enum, default_value_t = Steer::On)]
    pub steer: Steer,
}

/// `--steer on|off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Steer {
    On,
    Off,
}

impl Steer {
    pub const fn on(self) -> bool {
        matches!(self, Steer::On)
    }
}

#[derive(Debug, Args)]
pub struct StressArgs {
    /// The race (see the list below).
    #[arg(long, value_name = "S", default_value = "d15293", value_parser = parse_scenario)]
    pub scenario: ScenarioId,
    /// Patch variant of the scenario (see the list below) [default: the
    /// scenario's unpatched code, `baseline` for d15293].
    #[arg(long, value_name = "V")]
    pub variant: Option<String>,
    /// Workload seed, decimal or 0x-hex [default: random, printed].
    #[arg(long, value_name = "X", value_parser = crate::seed::parse)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub boot: StressBootArgs,
    /// Show the last N events of a failure's interleaving (0: all of them).
    #[arg(long, value_name = "N", default_value_t = 80, allow_negative_numbers = true,
          value_parser = parse_events)]
    pub events: usize,
    /// Also write the boot's result as JSON to this file (the per-boot
    /// record of `compare --json`).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// On a failure or hang, write its per-CPU trace as Chrome Trace Event
    /// Format JSON (ui.perfetto.dev, chrome://tracing) to this file.
    #[arg(long, value_name = "PATH")]
    pub trace_out: Option<PathBuf>,
    /// On a failure or hang, draw its interleaving as an SVG swimlane.
    #[arg(long, value_name = "PATH")]
    pub trace_svg: Option<PathBuf>,
}

impl StressArgs {
    /// The variant to boot (checked against the scenario).
    pub fn variant(&self) -> Result<Variant> {
        variant_of(
            self.scenario,
            self.variant.as_deref(),
            self.scenario.default_variant(),
        )
    }
}

impl BenchStressArgs {
    /// The variant to boot (checked against the scenario).
    pub fn variant(&self) -> Result<Variant> {
        variant_of(
            self.scenario,
            self.variant.as_deref(),
            self.scenario.bench_variant(),
        )
    }
}

impl CompareArgs {
    /// The variants to compare (checked against the scenario).
    pub fn variants(&self) -> Result<Vec<Variant>> {
        parse_variants(self.scenario, &self.variants)
    }
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The race whose variants are compared.
    #[arg(long, value_name = "S", default_value = "d15293", value_parser = parse_scenario)]
    pub scenario: ScenarioId,
    /// Variants to compare: `all` or a comma-separated list of the scenario's.
    #[arg(long, value_name = "all|V,V", default_value = "all")]
    pub variants: String,
    /// Boots per variant (1 to 10000).
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub boots: u32,
    #[command(flatten)]
    pub boot: StressBootArgs,
    /// QEMUs running at once [default: host CPUs / --cpus, at least 1: every
    /// vCPU is a host thread, and the race needs vCPUs that really run at
    /// the same time — oversubscribed boots catch far less].
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Seed of boot 0 of every variant; boot i uses seed-base + i.
    #[arg(long, value_name = "X", default_value = "1", value_parser = crate::seed::parse)]
    pub seed_base: u64,
    /// Write every boot and the per-variant summaries as JSON (atomically).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write an SVG strip plot of time to first failure per variant.
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// For every caught or hung boot, write its trace to
    /// DIR/<variant>-<seed>.trace.json (Chrome trace) and .svg (swimlane).
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// Write JUnit XML: one case per boot (`variant/seed`), failed only on
    /// infrastructure errors; the finding is in the case's system-out.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Run only shard I of N of the plan: its cells number i with
    /// i mod N = I-1 (plan order: boot-major). Merge the shards' JSON with
    /// `cargo xtask merge`. `auto` takes I/N from a Slurm array task
    /// (SLURM_ARRAY_TASK_ID/_MIN/_MAX/_COUNT) or a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX, with --shards N or FORKSWAP_SHARDS).
    #[arg(long, value_name = "I/N|auto", value_parser = crate::shard_env::ShardArg::parse)]
    pub shard: Option<crate::shard_env::ShardArg>,
    /// With `--shard auto` in a Kubernetes Indexed Job: the number of
    /// shards (the Job's completions) [default: $FORKSWAP_SHARDS]. In a
    /// Slurm array it must equal the array's task count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shards: Option<u32>,
    /// Instead of the fixed matrix, boot each variant until it is decided:
    /// caught at its first oracle failure; clean once 0 failures in its
    /// window hits bound its per-hit failure rate (95%) at least --factor
    /// times below the unfixed variant's, measured in the same run;
    /// inconclusive when --budget runs out. --boots is then unused.
    #[arg(long)]
    pub until_confident: bool,
    /// With --until-confident: how many times less often per window hit a
    /// clean variant must fail than the unfixed one (more than 1).
    #[arg(long, value_name = "F", default_value_t = 100.0, requires = "until_confident",
          value_parser = parse_factor)]
    pub factor: f64,
    /// With --until-confident: wall seconds for the whole run; undecided
    /// variants are then inconclusive.
    #[arg(long, value_name = "S", default_value = "120", requires = "until_confident",
          value_parser = parse_secs)]
    pub budget: Duration,
    /// With --until-confident: boot seconds one variant may use at most.
    #[arg(long, value_name = "S", requires = "until_confident", value_parser = parse_secs)]
    pub variant_budget: Option<Duration>,
}

/// Parses `--factor`: a number above 1.
pub fn parse_factor(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !(v > 1.0 && v <= 1e9) {
        return Err(format!("{s} is not in (1, 1e9]"));
    }
    Ok(v)
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Boot `mode=probe` against the floor (the same kernel exiting on
    /// entry: `mode=crash kind=early-exit`) in N alternating pairs per
    /// (machine, accelerator); print min/median/max of spawn→Ready and
    /// spawn→exit in ms, the median probe/floor ratio and where the probe's
    /// time goes (from extra `boot_timeline=1` boots).
    ///
    /// An accelerator whose first boot fails is reported as unavailable.
    Boot(BenchBootArgs),
    /// One stress boot's throughput, and virtio-blk's read rate beside the host's.
    ///
    /// Prints window hits/s, faults/s, forks/s and swap-in MB/s of one
    /// `mode=stress` boot, then boots `mode=diskbench` and prints the
    /// guest's virtio-blk read rate beside the host's read rate of the same
    /// image file (cold: after fsync and posix_fadvise(DONTNEED); and warm).
    Stress(BenchStressArgs),
}

#[derive(Debug, Args)]
pub struct BenchStressArgs {
    /// The race of the stress boot.
    #[arg(long, value_name = "S", default_value = "d15293", value_parser = parse_scenario)]
    pub scenario: ScenarioId,
    /// Patch variant of the stress boot [default: the scenario's committed
    /// fix, `swap-prealloc` for d15293].
    #[arg(long, value_name = "V")]
    pub variant: Option<String>,
    /// Workload seed, decimal or 0x-hex.
    #[arg(long, value_name = "X", default_value = "1", value_parser = crate::seed::parse)]
    pub seed: u64,
    #[command(flatten)]
    pub boot: StressBootArgs,
    /// MiB the disk benchmark writes and reads (1 to 1024).
    #[arg(long, value_name = "MIB", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub mib: u64,
}

#[derive(Debug, Args)]
pub struct BenchBootArgs {
    /// Probe/floor pairs per (machine, accelerator).
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
    fn default_jobs_fit_the_vcpus_on_the_host() {
        assert_eq!(default_jobs(2, 4), 1);
        assert_eq!(default_jobs(2, 1), 2);
        assert_eq!(default_jobs(16, 4), 4);
        assert_eq!(default_jobs(1, 0), 1);
    }

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
