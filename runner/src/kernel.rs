//! Building the kernel image and telling images apart (SHA-256): `cargo build -p unikernel --target
//! x86_64-unknown-none --release`, honouring the inherited
//! `CARGO_TARGET_DIR`, and finding `forkswap-kernel` from cargo's own
//! artifact messages (falling back to `cargo metadata`'s target dir).

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use cargo_metadata::{Message, MetadataCommand};

use crate::toolchain::{self, KERNEL_TARGET};

/// The kernel binary's name.
pub const KERNEL_BIN: &str = "forkswap-kernel";

/// Adds the target if needed, builds the kernel, returns the image's path.
pub fn build(workspace: &Path) -> anyhow::Result<PathBuf> {
    toolchain::ensure_kernel_target(workspace)?;
    let mut child = toolchain::cargo()
        .args([
            "build",
            "-p",
            "unikernel",
            "--target",
            KERNEL_TARGET,
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot run cargo to build the kernel")?;
    let mut image = None;
    if let Some(out) = child.stdout.take() {
        for msg in Message::parse_stream(BufReader::new(out)).flatten() {
            if let Message::CompilerArtifact(a) = msg
                && a.target.name == KERNEL_BIN
                && let Some(exe) = a.executable
            {
                image = Some(exe.into_std_path_buf());
            }
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        bail!("the kernel build failed ({status}); the compiler output is above");
    }
    let image = match image {
        Some(i) => i,
        None => expected_image(workspace)?,
    };
    if !image.is_file() {
        bail!(
            "the kernel image {} is missing after a successful build",
            image.display()
        );
    }
    Ok(image)
}

/// `<target-dir>/x86_64-unknown-none/release/forkswap-kernel`, with the
/// target dir from `cargo metadata` (which honours `CARGO_TARGET_DIR`).
pub fn expected_image(workspace: &Path) -> anyhow::Result<PathBuf> {
    let meta = MetadataCommand::new()
        .current_dir(workspace)
        .no_deps()
        .exec()
        .context("cargo metadata failed")?;
    Ok(meta
        .target_directory
        .into_std_path_buf()
        .join(KERNEL_TARGET)
        .join("release")
        .join(KERNEL_BIN))
}

/// The SHA-256 of a kernel image, lowercase hex: which kernel a report's
/// boots ran (merged shards must share it).
pub fn sha256(image: &Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(image)
        .with_context(|| format!("cannot read the kernel image {}", image.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The workspace root (the runner lives in `<workspace>/runner`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
