//! No QEMU outlives the runner: every QEMU is spawned through [`spawn`] into
//! its own process group and registered here, every temp dir too. On
//! SIGINT/SIGTERM a handler thread records the signal ([`interrupted`]),
//! kills every registered process group, removes every registered temp dir
//! and refuses to spawn or register anything after that. In normal
//! operation the owners ([`crate::boot`]'s guard, [`crate::disk::SwapDisk`])
//! clean up on drop and unregister.
//!
//! What happens next depends on the command. By default the handler exits
//! at once with 130 (SIGINT) or 143 (SIGTERM). A command that has results
//! worth keeping (`stress`, `compare`) holds a [`Graceful`] guard: the
//! handler then leaves the exit to the command, which stops starting boots,
//! writes what finished (marked interrupted) and returns
//! [`interrupt_exit_code`]. A second signal, or a command that has not
//! finished [`GRACE`] after the first, exits at once.
//!
//! (`ctrlc` cannot tell SIGINT from SIGTERM, so this uses `signal-hook`'s
//! safe iterator to exit with the right status.)

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// How long a command in a [`Graceful`] section has, after the first
/// signal, to write its results and exit.
pub const GRACE: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Registry {
    next: u64,
    shutting_down: bool,
    groups: HashMap<u64, i32>,
    dirs: HashMap<u64, PathBuf>,
}

impl Registry {
    /// Nothing new is spawned or registered once the handler has cleaned up.
    fn refuse_if_shutting_down(&self) -> io::Result<()> {
        if self.shutting_down {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the runner is shutting down",
            ));
        }
        Ok(())
    }
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
/// The first signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Live [`Graceful`] guards.
static GRACEFUL: AtomicUsize = AtomicUsize::new(0);
/// Held by the handler while it kills, cleans up and reports, so that the
/// main thread's exit waits for the report.
static REPORTING: Mutex<()> = Mutex::new(());

fn registry() -> MutexGuard<'static, Option<Registry>> {
    // A panic elsewhere never makes cleanup impossible.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut g = registry();
    f(g.get_or_insert_with(Registry::default))
}

/// The name of a signal the runner handles.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

/// The signal that interrupted the runner, if one did.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The exit status for an interrupted runner (130 for SIGINT, 143 for
/// SIGTERM), once the handler has finished its cleanup report.
pub fn interrupt_exit_code() -> Option<u8> {
    let sig = interrupted()?;
    drop(REPORTING.lock().unwrap_or_else(|e| e.into_inner()));
    Some((128 + sig) as u8)
}

/// While one of these lives, a signal does not end the process: the
/// command stops, keeps what finished, and exits with
/// [`interrupt_exit_code`] itself.
#[derive(Debug)]
pub struct Graceful(());

impl Graceful {
    pub fn new() -> Self {
        GRACEFUL.fetch_add(1, Ordering::SeqCst);
        Graceful(())
    }
}

impl Default for Graceful {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Graceful {
    fn drop(&mut self) {
        GRACEFUL.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Installs the SIGINT/SIGTERM handler (once, at start-up).
pub fn install_signal_handler() -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if let Some(first) = interrupted() {
                    crate::note!("{}: exiting now", signal_name(sig));
                    std::process::exit(128 + first);
                }
                let report = REPORTING.lock().unwrap_or_else(|e| e.into_inner());
                SIGNAL.store(sig, Ordering::SeqCst);
                let (groups, dirs) = shut_down();
                crate::note!(
                    "interrupted by {}: killed {groups} QEMU process group(s), removed {dirs} temp dir(s)",
                    signal_name(sig)
                );
                drop(report);
                if GRACEFUL.load(Ordering::SeqCst) == 0 {
                    std::process::exit(128 + sig);
                }
                let _ = std::thread::Builder::new()
                    .name("grace".into())
                    .spawn(move || {
                        std::thread::sleep(GRACE);
                        crate::note!(
                            "the runner did not stop within {} s of {}: exiting",
                            GRACE.as_secs(),
                            signal_name(sig)
                        );
                        let _ = shut_down();
                        std::process::exit(128 + sig);
                    });
            }
        })?;
    Ok(())
}

/// Ends the runner now with `code`, after killing every registered QEMU
/// group and removing every registered temp dir (for paths that cannot
/// unwind to the owners' drops).
pub fn exit_now(code: i32) -> ! {
    let _ = shut_down();
    std::process::exit(code)
}

/// Exit status of a runner whose standard output was closed under it
/// (`cargo xtask compare | head`): what a shell reports for a process that
/// SIGPIPE ended.
pub const EXIT_BROKEN_PIPE: i32 = 128 + 13;

/// Makes a closed standard output (`… | head`) end the runner quietly with
/// [`EXIT_BROKEN_PIPE`], its QEMUs killed and temp disks removed, as
/// SIGPIPE ends other tools — instead of `println!`'s panic and backtrace
/// (Rust ignores SIGPIPE, so the write fails with EPIPE and `println!`
/// panics). Every other panic goes to the default hook.
pub fn install_broken_pipe_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_broken_pipe_panic(msg) {
            exit_now(EXIT_BROKEN_PIPE);
        }
        default(info)
    }));
}

/// Whether a panic message is `print!`'s on a closed pipe.
fn is_broken_pipe_panic(msg: &str) -> bool {
    msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe")
}

/// Kills every registered group and removes every registered dir; no new
/// QEMU is spawned and no temp dir registered afterwards. Returns how many
/// of each.
fn shut_down() -> (usize, usize) {
    with(|r| {
        r.shutting_down = true;
        for pgid in r.groups.values() {
            kill_group(*pgid);
        }
        for dir in r.dirs.values() {
            let _ = std::fs::remove_dir_all(dir);
        }
        (r.groups.len(), r.dirs.len())
    })
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

/// The helper that asks the kernel to SIGKILL a process when its parent
/// dies (util-linux; present wherever `apt-get` is).
pub const SETPRIV: &str = "setpriv";

/// A command that runs `program` and dies with the runner, even a runner
/// killed without a word (SIGKILL, a crash) that no handler sees: through
/// `setpriv --pdeathsig KILL -- program`, which sets the parent-death
/// signal and then execs `program` in its place (same pid, same group).
/// Without `setpriv` on PATH, or when `program` does not resolve (so that
/// the spawn itself fails and says why), it is `program` alone, which only
/// handled signals and normal exits clean up.
///
/// The parent-death signal fires when the *thread* that spawned the
/// process ends: spawn from the thread that waits for the process.
pub fn command(program: &Path) -> Command {
    static SETPRIV_PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    let setpriv = SETPRIV_PATH.get_or_init(|| which::which(SETPRIV).ok());
    match (setpriv, which::which(program)) {
        (Some(setpriv), Ok(program)) => {
            let mut cmd = Command::new(setpriv);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(program);
            cmd
        }
        _ => Command::new(program),
    }
}

/// Spawns `cmd` as the leader of a new process group and registers the
/// group, atomically with respect to the signal handler.
pub fn spawn(cmd: &mut Command) -> io::Result<(Child, Registration)> {
    cmd.process_group(0);
    with(|r| {
        r.refuse_if_shutting_down()?;
        let child = cmd.spawn()?;
        r.next += 1;
        let id = r.next;
        r.groups.insert(id, child.id() as i32);
        Ok((child, Registration(id)))
    })
}

/// Registers a temp dir to remove if the runner is interrupted; refused
/// once it has been (the caller then removes the dir itself).
pub fn track_dir(path: PathBuf) -> io::Result<Registration> {
    with(|r| {
        r.refuse_if_shutting_down()?;
        r.next += 1;
        r.dirs.insert(r.next, path);
        Ok(Registration(r.next))
    })
}

/// A marker unique to this runner process, put in every QEMU command line
/// (`-name`) and temp dir name, so that leftovers can be found.
pub fn marker() -> String {
    marker_for(std::process::id())
}

/// The marker of the runner with process id `pid`: `forkswap-<pid>-`
/// ([`crate::disk::sweep_stale_dirs`] reads the pid back from it).
pub fn marker_for(pid: u32) -> String {
    format!("forkswap-{pid}-")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_print_on_a_closed_pipe_counts_as_broken_pipe() {
        assert!(is_broken_pipe_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe_panic(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_pipe_panic("index out of bounds: Broken pipe"));
    }

    #[test]
    fn command_wraps_a_resolvable_program_in_setpriv() {
        let cmd = command(Path::new("sh"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if which::which(SETPRIV).is_ok() {
            assert!(cmd.get_program().to_string_lossy().ends_with("/setpriv"));
            assert_eq!(args[..3], ["--pdeathsig", "KILL", "--"]);
            assert!(args[3].ends_with("/sh"), "{args:?}");
        } else {
            assert_eq!(cmd.get_program(), "sh");
        }
        // A program that does not resolve is spawned as is, so that the
        // spawn fails with its own error.
        let missing = command(Path::new("/nonexistent/qemu"));
        assert_eq!(missing.get_program(), "/nonexistent/qemu");
        assert_eq!(missing.get_args().count(), 0);
    }

    #[test]
    fn wrapped_child_dies_with_its_parent_thread() {
        if which::which(SETPRIV).is_err() {
            return;
        }
        // The parent-death signal follows the spawning thread: a child
        // spawned by a thread that then ends is killed.
        let child = std::thread::spawn(|| {
            let mut cmd = command(Path::new("sleep"));
            cmd.arg("30");
            let child = cmd.spawn().expect("spawn");
            // setpriv sets the signal after the fork: give it the time.
            std::thread::sleep(Duration::from_millis(300));
            child
        })
        .join()
        .expect("thread");
        let mut child = child;
        let t = std::time::Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break Some(st);
            }
            if t.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(9),
            "the child outlived its parent thread"
        );
    }
}
