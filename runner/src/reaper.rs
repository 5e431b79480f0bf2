//! No QEMU outlives the runner: every QEMU is spawned through [`spawn`] into
//! its own process group and registered here, every temp dir too. On
//! SIGINT/SIGTERM a handler thread kills every registered process group,
//! removes every registered temp dir and exits with 130/143. In normal
//! operation the owners ([`crate::boot`]'s guard, [`crate::disk::SwapDisk`])
//! clean up on drop and unregister.
//!
//! (`ctrlc` cannot tell SIGINT from SIGTERM, so this uses `signal-hook`'s
//! safe iterator to exit with the right status.)

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

#[derive(Default)]
struct Registry {
    next: u64,
    shutting_down: bool,
    groups: HashMap<u64, i32>,
    dirs: HashMap<u64, PathBuf>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<Registry>> {
    // A panic elsewhere never makes cleanup impossible.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut g = registry();
    f(g.get_or_insert_with(Registry::default))
}

/// Installs the SIGINT/SIGTERM handler (once, at start-up).
pub fn install_signal_handler() -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let (groups, dirs) = shut_down();
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!(
                    "interrupted by {name}: killed {groups} QEMU process group(s), removed {dirs} temp dir(s)"
                );
                std::process::exit(128 + sig);
            }
        })?;
    Ok(())
}

/// Kills every registered group and removes every registered dir; no new
/// QEMU is spawned afterwards. Returns how many of each.
fn shut_down() -> (usize, usize) {
    let mut g = registry();
    let r = g.get_or_insert_with(Registry::default);
    r.shutting_down = true;
    for pgid in r.groups.values() {
        kill_group(*pgid);
    }
    for dir in r.dirs.values() {
        let _ = std::fs::remove_dir_all(dir);
    }
    (r.groups.len(), r.dirs.len())
    // The lock stays held until the process exits: nothing can register now.
}

/// SIGKILLs a process group; a group that is already gone is fine.
pub fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

/// Keeps something registered until dropped.
#[derive(Debug)]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        with(|r| {
            r.groups.remove(&self.0);
            r.dirs.remove(&self.0);
        });
    }
}

/// Spawns `cmd` as the leader of a new process group and registers the
/// group, atomically with respect to the signal handler.
pub fn spawn(cmd: &mut Command) -> io::Result<(Child, Registration)> {
    cmd.process_group(0);
    with(|r| {
        if r.shutting_down {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the runner is shutting down",
            ));
        }
        let child = cmd.spawn()?;
        r.next += 1;
        let id = r.next;
        r.groups.insert(id, child.id() as i32);
        Ok((child, Registration(id)))
    })
}

/// Registers a temp dir to remove if the runner is interrupted.
pub fn track_dir(path: PathBuf) -> Registration {
    with(|r| {
        r.next += 1;
        r.dirs.insert(r.next, path);
        Registration(r.next)
    })
}

/// A marker unique to this runner process, put in every QEMU command line
/// (`-name`) and temp dir name, so that leftovers can be found.
pub fn marker() -> String {
    format!("forkswap-{}-", std::process::id())
}

/// PIDs of live processes (other than zombies) whose command line contains
/// `needle`, found through /proc.
pub fn processes_matching(needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'));
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !zombie && String::from_utf8_lossy(&cmd).contains(needle)
        })
        .collect()
}
