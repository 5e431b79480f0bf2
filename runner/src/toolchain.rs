//! The Rust side of the harness: the kernel's `x86_64-unknown-none` target.
//!
//! The machines set `RUSTUP_AUTO_INSTALL=0`, so `rust-toolchain.toml` does
//! not fetch the target on a fresh machine: this adds it when it is missing.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

/// The kernel's target triple.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Makes sure the kernel target is installed (rustup target add when not).
pub fn ensure_kernel_target(workspace: &Path) -> anyhow::Result<()> {
    let out = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(workspace)
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("rustup not found: assuming the {KERNEL_TARGET} target is installed");
            return Ok(());
        }
        Err(e) => return Err(e).context("cannot run `rustup target list --installed`"),
    };
    if !out.status.success() {
        bail!(
            "`rustup target list --installed` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == KERNEL_TARGET)
    {
        return Ok(());
    }
    eprintln!("the {KERNEL_TARGET} target is missing: running `rustup target add {KERNEL_TARGET}`");
    let status = Command::new("rustup")
        .args(["target", "add", KERNEL_TARGET])
        .current_dir(workspace)
        .status()
        .context("cannot run `rustup target add`")?;
    if !status.success() {
        bail!("`rustup target add {KERNEL_TARGET}` failed ({status})");
    }
    Ok(())
}

/// The cargo to run: the one that started us (`$CARGO`) or `cargo`.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
