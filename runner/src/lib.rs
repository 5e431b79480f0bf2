//! forkswap's host tool behind `cargo xtask`, as a library so that the
//! subcommands (and the integration tests) share one boot engine.
//!
//! One concept per module: [`cli`] (the command line), [`cmd`] (one module
//! per subcommand), [`boot`] (one QEMU run → one outcome), [`qemu`] (command
//! lines, finding/installing QEMU), [`lines`] (splitting output into lines),
//! [`console`] (classifying console lines), [`transcript`] (judging
//! recorded output by the same path as a live boot),
//! [`verdict`] (named verdicts), [`disk`] (sparse swap disks), [`kernel`]
//! (building the image), [`toolchain`] (rustup target), [`accel`] (KVM
//! probe), [`reaper`] (no QEMU outlives the runner), [`render`] and
//! [`report`] (human output, KTAP, JUnit), [`suite`] (running the boot tests: [`suite_plan`] what boots, [`suite_cases`] the KTAP cases),
//! [`harness`] (the suite's checks of the harness itself).
//!
//! Stress work: [`seed`] (parsing, printing, random seeds), [`stress_spec`]
//! (what one stress boot runs: command line, timeout, replay),
//! [`stress_result`] (what it found: result, outcome), [`live`] (the status line),
//! [`finding`] (the interleaving of a failure), [`matrix`] (scheduling the
//! variant × boot matrix and its shards), [`shard_env`] (`--shard auto`
//! from a job array's environment), [`merge`] (shard reports into
//! one; [`merge_confident`] for `--until-confident` runs), [`summary`]
//! (statistics and variant verdicts), [`confidence`]
//! (the bounds and the decision rule of `compare --until-confident`),
//! [`adaptive`] (its loop: boots per variant until decided),
//! [`json`] (reports, atomic writes), [`plot`] (the SVG), [`tracefiles`]
//! (a finding's Chrome trace and [`swimlane`] SVG).
#![forbid(unsafe_code)]

pub mod accel;
pub mod adaptive;
pub mod boot;
pub mod cli;
pub mod cmd;
pub mod confidence;
pub mod console;
pub mod disk;
pub mod error;
pub mod finding;
pub mod harness;
pub mod json;
pub mod kernel;
pub mod lines;
pub mod live;
pub mod matrix;
pub mod merge;
pub mod merge_confident;
pub mod out;
pub mod plot;
pub mod qemu;
pub mod qmp;
pub mod reaper;
pub mod render;
pub mod report;
pub mod seed;
pub mod shard_env;
pub mod stress_result;
pub mod stress_spec;
pub mod suite;
pub mod suite_cases;
pub mod suite_plan;
pub mod summary;
pub mod swimlane;
#[cfg(test)]
mod testkit;
pub mod toolchain;
pub mod tracefiles;
pub mod transcript;
pub mod verdict;
