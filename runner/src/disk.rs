//! The swap disk of one boot: a raw file in a fresh temp dir whose blocks
//! are all allocated before the boot (`posix_fallocate`, no `qemu-img`), so
//! that a full file system is an infrastructure error before QEMU starts —
//! never a guest that QEMU stopped mid-run on ENOSPC, which would look like
//! a hang of the variant. Removed when the [`SwapDisk`] is dropped or when
//! the runner is interrupted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::Context;

use crate::reaper::{self, Registration};

/// Default disk size (the contract's 64 MiB).
pub const DEFAULT_MIB: u64 = 64;

/// The image's file name inside its temp dir.
pub const IMAGE_NAME: &str = "swap.img";

/// A raw disk image, every block allocated, that lives as long as this value.
#[derive(Debug)]
pub struct SwapDisk {
    path: PathBuf,
    // Field order matters: unregister before the dir is removed.
    _registration: Registration,
    _dir: tempfile::TempDir,
}

impl SwapDisk {
    /// Creates a disk of `bytes` bytes in a new temp dir with all its
    /// blocks allocated: no space for them is an error naming the disk and
    /// the OS's reason (e.g. `No space left on device`). The first
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
        let len = i64::try_from(bytes).context("the swap disk is too large")?;
        nix::fcntl::posix_fallocate(&file, 0, len).map_err(|e| {
            anyhow::anyhow!(
                "cannot allocate the swap disk {} ({} MiB): {}",
                path.display(),
                bytes >> 20,
                e.desc()
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
    fn disk_is_allocated_and_removed_on_drop() {
        let disk = SwapDisk::create(64 << 20).expect("disk");
        let meta = std::fs::metadata(disk.path()).expect("metadata");
        assert_eq!(meta.len(), 64 << 20);
        // Every block is allocated up front: the guest's writes cannot run
        // out of space mid-run.
        assert!(
            meta.blocks() * 512 >= 64 << 20,
            "sparse: {} blocks",
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
