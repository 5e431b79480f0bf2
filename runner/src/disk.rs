//! The swap disk of one boot: a raw file in a fresh temp dir whose blocks
//! are all allocated before the boot (`posix_fallocate`, no `qemu-img`), so
//! that a full file system is an infrastructure error before QEMU starts —
//! never a guest that QEMU stopped mid-run on ENOSPC, which would look like
//! a hang of the variant. Removed when the [`SwapDisk`] is dropped or when
//! the runner is interrupted; [`sweep_stale_dirs`] removes those that
//! runners killed without a word left behind.

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
            sweep_stale_dirs(&std::env::temp_dir());
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

/// Removes the temp dirs (`forkswap-<pid>-…`, holding a swap disk at most)
/// that runners which died without cleaning up left in `tmp`: those whose
/// pid no longer runs. Returns how many it removed.
pub fn sweep_stale_dirs(tmp: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(tmp) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("forkswap-"))
                .and_then(|n| n.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok());
            pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        })
        .filter(|e| only_swap_disk(&e.path()))
        .filter(|e| std::fs::remove_dir_all(e.path()).is_ok())
        .count()
}

/// Whether `dir` holds nothing but (at most) a swap disk and its QEMU's
/// QMP socket.
fn only_swap_disk(dir: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::read_dir(dir).is_ok_and(|d| {
        d.flatten().all(|e| {
            let (name, t) = (e.file_name(), e.file_type());
            (name == IMAGE_NAME && t.as_ref().is_ok_and(|t| t.is_file()))
                || (name == crate::qmp::SOCKET_NAME && t.is_ok_and(|t| t.is_socket()))
        })
    })
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

    /// A pid that ran and is gone.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = c.id();
        c.wait().expect("wait");
        pid
    }

    #[test]
    fn sweep_removes_only_swap_disk_dirs_of_dead_runners() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dead = dead_pid();
        let me = std::process::id();
        let mk = |name: &str, files: &[&str]| {
            let d = tmp.path().join(name);
            std::fs::create_dir(&d).expect("dir");
            for f in files {
                std::fs::write(d.join(f), b"x").expect("file");
            }
            d
        };
        let stale = mk(&format!("forkswap-{dead}-abc"), &[IMAGE_NAME]);
        // A disk dir whose QEMU had its QMP socket there.
        let with_qmp = mk(&format!("forkswap-{dead}-qmp"), &[IMAGE_NAME]);
        let _listener =
            std::os::unix::net::UnixListener::bind(with_qmp.join(crate::qmp::SOCKET_NAME))
                .expect("socket");
        // A plain file of that name is not QEMU's socket.
        let fake_qmp = mk(&format!("forkswap-{dead}-jkl"), &[crate::qmp::SOCKET_NAME]);
        let empty = mk(&format!("forkswap-{dead}-def"), &[]);
        let live = mk(&format!("forkswap-{me}-abc"), &[IMAGE_NAME]);
        let other = mk(&format!("forkswap-{dead}-ghi"), &["notes.txt"]);
        let named = mk("forkswap-interrupt-check-xyz", &[]);
        assert_eq!(sweep_stale_dirs(tmp.path()), 3);
        assert!(!stale.exists() && !empty.exists() && !with_qmp.exists());
        assert!(fake_qmp.exists());
        assert!(live.exists(), "a live runner's disk was removed");
        assert!(
            other.exists(),
            "a dir with more than a swap disk was removed"
        );
        assert!(named.exists());
    }
}
