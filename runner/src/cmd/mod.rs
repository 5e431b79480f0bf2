//! The subcommands of `cargo xtask`, one module each, and what they share:
//! the workspace, the kernel image and the QEMU binary.

pub mod bench;
pub mod bench_stress;
pub mod build;
pub mod compare;
pub mod confident;
pub mod fuzz;
pub mod merge;
pub mod run;
pub mod scenarios;
pub mod stress;
pub mod test;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::error::Result;
use crate::{kernel, qemu};

/// What every subcommand needs.
#[derive(Debug)]
pub struct Ctx {
    pub workspace: PathBuf,
    pub verbose: bool,
    /// `--kernel PATH`: an image to boot instead of building one.
    pub kernel: Option<PathBuf>,
}

impl Ctx {
    /// Builds the kernel (adding its target when missing); its image path.
    pub fn kernel(&self) -> Result<PathBuf> {
        match &self.kernel {
            Some(k) if k.is_file() => Ok(k.clone()),
            Some(k) if k.is_dir() => Err(anyhow::anyhow!(
                "--kernel {}: is a directory, not a kernel image (e.g. target/x86_64-unknown-none/release/forkswap-kernel)",
                k.display()
            )
            .into()),
            Some(k) => {
                Err(anyhow::anyhow!("the kernel image {} does not exist", k.display()).into())
            }
            None => Ok(kernel::build(&self.workspace)?),
        }
    }

    /// The QEMU binary, installed when missing.
    pub fn qemu(&self) -> Result<PathBuf> {
        Ok(qemu::locate_or_install(&self.workspace)?)
    }
}

/// Runs the chosen subcommand; its exit status.
pub fn dispatch(cli: Cli) -> Result<u8> {
    let ctx = Ctx {
        workspace: kernel::workspace_root(),
        verbose: cli.verbose,
        kernel: cli.kernel,
    };
    match cli.command {
        Command::Build => build::run(&ctx),
        Command::Run(a) => run::run(&ctx, &a),
        Command::Test(a) => test::run(&ctx, &a),
        Command::Bench(b) => bench::run(&ctx, &b),
        Command::Stress(a) => stress::run(&ctx, &a),
        Command::Compare(a) => compare::run(&ctx, &a),
        Command::Fuzz(a) => fuzz::run(&ctx, &a),
        Command::Merge(a) => merge::run(&ctx, &a),
        Command::Scenarios => scenarios::run(),
    }
}
