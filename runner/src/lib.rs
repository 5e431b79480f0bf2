//! forkswap's host tool behind `cargo xtask`, as a library so that the
//! subcommands (and the integration tests) share one boot engine.
//!
//! One concept per module: [`cli`] (the command line), [`cmd`] (one module
//! per subcommand), [`boot`] (one QEMU run → one outcome), [`qemu`] (command
//! lines, finding/installing QEMU), [`console`] (classifying console lines),
//! [`verdict`] (named verdicts), [`disk`] (sparse swap disks), [`kernel`]
//! (building the image), [`toolchain`] (rustup target), [`accel`] (KVM
//! probe), [`reaper`] (no QEMU outlives the runner), [`render`] and
//! [`report`] (human output, KTAP, JUnit), [`suite`] (the boot tests).
#![forbid(unsafe_code)]

pub mod accel;
pub mod boot;
pub mod cli;
pub mod cmd;
pub mod console;
pub mod disk;
pub mod error;
pub mod kernel;
pub mod qemu;
pub mod reaper;
pub mod render;
pub mod report;
pub mod suite;
pub mod toolchain;
pub mod verdict;
