//! The swap disk of one boot: a sparse raw file in a fresh temp dir, made
//! with `set_len` (no `qemu-img`), removed when the [`SwapDisk`] is dropped
//! or when the runner is interrupted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::Context;

use crate::reaper::{self, Registration};

/// Default disk size (the contract's 64 MiB).
pub const DEFAULT_MIB: u64 = 64;

/// The image's file name inside its temp dir.
pub const IMAGE_NAME: &str = "swap.img";

/// A sparse raw disk image that lives as long as this value.
#[derive(Debug)]
pub struct SwapDisk {
    path: PathBuf,
    // Field order matters: unregister before the dir is removed.
    _registration: Registration,
    _dir: tempfile::TempDir,
}

impl SwapDisk {
    /// Creates a sparse disk of `bytes` bytes in a new temp dir. The first
    /// disk a runner makes first sweeps the temp dir of the disks that
    /// runners killed without a word left there.
    pub fn create(bytes: u64) -> anyhow::Result<Self> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            reaper::sweep_stale_dirs(&std::env::temp_dir());
        });
        let dir = tempfile::Builder::new()
            .prefix(&reaper::marker())
            .tempdir()
            .context("cannot create a temp dir for the swap disk")?;
        let registration =
            reaper::track_dir(dir.path().to_path_buf()).context("cannot make the swap disk")?;
        let path = dir.path().join(IMAGE_NAME);
        let file = File::create(&path)
            .with_context(|| format!("cannot create the swap disk {}", path.display()))?;
        file.set_len(bytes).with_context(|| {
            format!(
                "cannot size the swap disk {} to {bytes} bytes",
                path.display()
            )
        })?;
        Ok(SwapDisk {
            path,
            _registration: registration,
            _dir: dir,
        })
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn disk_is_sparse_and_removed_on_drop() {
        let disk = SwapDisk::create(64 << 20).expect("disk");
        let meta = std::fs::metadata(disk.path()).expect("metadata");
        assert_eq!(meta.len(), 64 << 20);
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "not sparse: {} blocks",
            meta.blocks()
        );
        let dir = disk.path().parent().map(Path::to_path_buf).expect("dir");
        assert!(
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&reaper::marker()))
        );
        drop(disk);
        assert!(!dir.exists());
    }
}
