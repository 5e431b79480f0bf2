//! The boot engine: one [`BootSpec`] in, one QEMU run, one [`BootOutcome`]
//! out. It makes the swap disk, spawns QEMU in its own process group, reads
//! the serial console line by line on a thread, classifies every line
//! ([`crate::console`]), hands each to a live callback, enforces the timeout,
//! and judges the end ([`crate::verdict::judge`]).
//!
//! Boots are independent: several may run at once on different threads.
//! QEMU never outlives its boot: a guard kills the process group on every
//! path out of [`boot`], and [`crate::reaper`] covers signals.

use std::io::{BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stress::Stats;
use stress::proto::Record;

use crate::console::{Console, ConsoleLine, Ktap, LineEnd};
use crate::disk::SwapDisk;
use crate::qemu::{self, Accel, Machine, QemuArgs};
use crate::reaper::{self, Registration};
use crate::verdict::{self, Ending, Exit, Judgement, Verdict};

use crate::lines::{MAX_LINE, READ_BUFFER, STDERR_LINE, TAIL_LINES, push_tail, read_chunk};
/// How long to wait for the console to close after QEMU exited.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long to keep reading after QEMU said it stopped the guest.
const STOP_GRACE: Duration = Duration::from_millis(300);

/// QEMU's stderr lines that mean the accelerator stopped the guest for good
/// (QEMU then pauses it and keeps running instead of exiting).
const GUEST_STOPPED: [&str; 3] = [
    "KVM internal error",
    "KVM: entry failed",
    "error: kvm run failed",
];

/// True for a stderr line saying that the accelerator stopped the guest.
pub fn guest_stopped(stderr_line: &str) -> bool {
    GUEST_STOPPED.iter().any(|p| stderr_line.contains(p))
}

/// Everything one boot needs.
#[derive(Clone, Debug)]
pub struct BootSpec {
    pub machine: Machine,
    pub cpus: u32,
    pub mem_mib: u32,
    pub accel: Accel,
    /// The kernel command line (`-append`).
    pub append: String,
    /// Size of the swap disk in bytes; `None` for no disk.
    pub disk_bytes: Option<u64>,
    /// Boot with this existing image as the disk instead of a fresh temp
    /// one (`disk_bytes` is then ignored); it is left in place afterwards,
    /// e.g. for `bench stress` to read what the kernel wrote.
    pub disk_file: Option<PathBuf>,
    pub timeout: Duration,
    /// More QEMU arguments after the contract's (the suite uses this to
    /// make QEMU refuse to start).
    pub qemu_extra: Vec<String>,
    pub kernel: PathBuf,
    /// The QEMU binary (tests put a stand-in here).
    pub qemu: PathBuf,
}

impl BootSpec {
    /// A boot of `kernel` with `append` on the default guest: default
    /// memory, a fresh swap disk of the default size, no extra arguments.
    pub fn new(
        machine: Machine,
        cpus: u32,
        accel: Accel,
        append: String,
        timeout: Duration,
        kernel: PathBuf,
        qemu: PathBuf,
    ) -> Self {
        BootSpec {
            machine,
            cpus,
            mem_mib: qemu::DEFAULT_MEM_MIB,
            accel,
            append,
            disk_bytes: Some(crate::disk::DEFAULT_MIB << 20),
            disk_file: None,
            qemu_extra: Vec::new(),
            timeout,
            kernel,
            qemu,
        }
    }

    /// A short label: `microvm/4cpu/tcg`.
    pub fn label(&self) -> String {
        format!("{}/{}cpu/{}", self.machine, self.cpus, self.accel)
    }
}

/// Times measured from the moment QEMU was spawned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    pub hello: Option<Duration>,
    pub ready: Option<Duration>,
    /// When QEMU exited on its own (`None` when it was killed or not started).
    pub exit: Option<Duration>,
}

/// What one boot produced.
#[derive(Clone, Debug)]
pub struct BootOutcome {
    pub judgement: Judgement,
    pub console: Console,
    pub timings: Timings,
    pub exit: Exit,
    /// QEMU's last stderr lines.
    pub stderr_tail: Vec<String>,
    /// The QEMU command line, for reports.
    pub command: String,
}

impl BootOutcome {
    pub fn verdict(&self) -> &Verdict {
        &self.judgement.verdict
    }

    /// Whether the runner's interrupt handler ended this boot (killed its
    /// QEMU, or never let it start): then it is no result. A boot whose
    /// QEMU exited by itself is one, interrupt or not.
    pub fn killed_by_interrupt(&self) -> bool {
        crate::reaper::interrupted().is_some() && !matches!(self.exit, Exit::Status(_))
    }

    /// The boot's KTAP results.
    pub fn ktap(&self) -> &Ktap {
        &self.console.ktap
    }

    /// The last counters and run time a stress boot reported: `Done`'s when
    /// it has them, else the last `Progress`'s.
    pub fn last_stats(&self) -> (Option<Stats>, Option<u64>) {
        let mut best: (Option<Stats>, Option<u64>) = (None, None);
        for r in self.console.records() {
            match r {
                Record::Progress { ms, stats } => best = (Some(stats.clone()), Some(*ms)),
                Record::Done { ms, stats, .. } => {
                    if let Some(s) = stats {
                        best = (Some(s.clone()), Some(*ms));
                    } else if best.0.is_some() {
                        best.1 = Some(*ms);
                    }
                }
                _ => {}
            }
        }
        best
    }

    /// An outcome for a boot the harness could not run.
    pub fn infra(reason: String) -> Self {
        BootOutcome {
            judgement: Judgement {
                verdict: Verdict::Infra,
                reason,
            },
            console: Console::new(TAIL_LINES),
            timings: Timings::default(),
            exit: Exit::SpawnFailed("not started".into()),
            stderr_tail: Vec::new(),
            command: String::new(),
        }
    }
}

enum Event {
    Line(Vec<u8>, Instant, LineEnd),
    StdoutClosed,
    Stderr(String),
    StderrClosed,
    Exited(std::io::Result<ExitStatus>, Instant),
}

/// The running QEMU: killing its process group and reaping it on drop.
struct Running {
    pgid: i32,
    waiter: Option<JoinHandle<()>>,
    _registration: Registration,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Harmless when QEMU already exited; kills anything left in its group.
        reaper::kill_group(self.pgid);
        if let Some(w) = self.waiter.take() {
            let _ = w.join();
        }
    }
}

static BOOTS: AtomicU64 = AtomicU64::new(0);

/// Boots once and judges the result. `on_line` sees every console line as
/// it arrives (on the calling thread).
///
/// Under KVM, a QEMU that dies on its CPU model before the guest printed
/// anything ([`refused_cpu`]) is started again with the next model of
/// [`qemu::KVM_CPUS`], which every later boot of this runner then uses; one
/// line on stderr says which model was picked and why.
pub fn boot(spec: &BootSpec, on_line: &mut dyn FnMut(&ConsoleLine)) -> BootOutcome {
    boot_until(spec, on_line, &|| false)
}

/// [`boot`], ending the boot early (killing QEMU) as soon as `stop` says so;
/// `stop` is asked after every console line. The caller that stopped a boot
/// knows it did: the outcome is that of a QEMU killed by the runner.
pub fn boot_until(
    spec: &BootSpec,
    on_line: &mut dyn FnMut(&ConsoleLine),
    stop: &dyn Fn() -> bool,
) -> BootOutcome {
    loop {
        let io_uring = IO_URING.load(Ordering::Relaxed);
        let model = KVM_CPU.load(Ordering::Relaxed);
        let out = boot_with(spec, on_line, stop, io_uring, model);
        if io_uring && refused_io_uring(&out) {
            // This QEMU (or this host kernel) cannot do io_uring: do without
            // it from now on, and boot again.
            IO_URING.store(false, Ordering::Relaxed);
            continue;
        }
        if spec.accel == Accel::Kvm
            && model + 1 < qemu::KVM_CPUS.len()
            && let Some(why) = refused_cpu(&out)
        {
            // Another boot may have moved on already: then use its choice.
            if KVM_CPU
                .compare_exchange(model, model + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                crate::note!(
                    "kvm: QEMU failed with -cpu {} ({why}); using -cpu {} from now on",
                    qemu::KVM_CPUS[model],
                    qemu::KVM_CPUS[model + 1]
                );
            }
            continue;
        }
        return out;
    }
}

/// Index in [`qemu::KVM_CPUS`] of the CPU model KVM boots use.
static KVM_CPU: AtomicUsize = AtomicUsize::new(0);

/// The `-cpu` of boots under `accel` (for KVM: the model picked so far).
pub fn cpu_model(accel: Accel) -> &'static str {
    match accel {
        Accel::Tcg => qemu::TCG_CPU,
        Accel::Kvm => {
            qemu::KVM_CPUS[KVM_CPU
                .load(Ordering::Relaxed)
                .min(qemu::KVM_CPUS.len() - 1)]
        }
    }
}

/// Why QEMU refused its CPU model: it died before the guest printed
/// anything, aborting (SIGABRT: an assertion in its KVM code) or saying
/// that it could not set a model-specific register.
fn refused_cpu(out: &BootOutcome) -> Option<String> {
    if out.console.lines > 0 {
        return None;
    }
    let msr = out
        .stderr_tail
        .iter()
        .find(|l| l.contains("MSR"))
        .map(|l| l.trim().to_string());
    match (&out.exit, msr) {
        (Exit::Signal(6) | Exit::Status(1), Some(l)) => Some(l),
        (Exit::Signal(6), None) => Some("QEMU aborted".into()),
        _ => None,
    }
}

/// Whether boots still ask QEMU for `aio=io_uring` (cleared the first time
/// QEMU refuses it).
static IO_URING: AtomicBool = AtomicBool::new(true);

/// QEMU failed to start because of `aio=io_uring`.
fn refused_io_uring(out: &BootOutcome) -> bool {
    *out.verdict() == Verdict::QemuFailed
        && out.command.contains("aio=io_uring")
        && out.stderr_tail.iter().any(|l| l.contains("io_uring"))
}

fn boot_with(
    spec: &BootSpec,
    on_line: &mut dyn FnMut(&ConsoleLine),
    stop: &dyn Fn() -> bool,
    io_uring: bool,
    kvm_cpu: usize,
) -> BootOutcome {
    let disk = match spec.disk_file {
        Some(_) => None,
        None => match spec.disk_bytes.map(SwapDisk::create).transpose() {
            Ok(d) => d,
            Err(e) => return BootOutcome::infra(format!("{e:#}")),
        },
    };
    if let Some(f) = &spec.disk_file
        && !f.is_file()
    {
        return BootOutcome::infra(format!("the disk image {} does not exist", f.display()));
    }
    // QMP lives next to the swap disk (removed with it); without a temp
    // disk, or in a dir too deep for a socket path, the boot goes without.
    let qmp = disk
        .as_ref()
        .and_then(|d| d.path().parent())
        .map(|d| d.join(crate::qmp::SOCKET_NAME))
        .filter(|p| p.as_os_str().len() <= crate::qmp::MAX_PATH);
    let name = format!(
        "{}{}",
        reaper::marker(),
        BOOTS.fetch_add(1, Ordering::Relaxed)
    );
    let args = qemu::args(&QemuArgs {
        machine: spec.machine,
        accel: spec.accel,
        cpu: match spec.accel {
            Accel::Tcg => qemu::TCG_CPU,
            Accel::Kvm => qemu::KVM_CPUS[kvm_cpu.min(qemu::KVM_CPUS.len() - 1)],
        },
        cpus: spec.cpus,
        mem_mib: spec.mem_mib,
        kernel: &spec.kernel,
        append: &spec.append,
        disk: spec
            .disk_file
            .as_deref()
            .or(disk.as_ref().map(SwapDisk::path)),
        name: &name,
        qmp: qmp.as_deref(),
        io_uring,
    });
    let mut args = args;
    args.extend(spec.qemu_extra.iter().map(Into::into));
    let command = qemu::display(&spec.qemu, &args);
    // Spawned from this thread, which waits for it: see reaper::command.
    let mut cmd = reaper::command(&spec.qemu);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let mut st = State {
        console: Console::new(TAIL_LINES),
        stderr_tail: Vec::new(),
        exited: None,
        stopped: None,
        out_closed: false,
        err_closed: false,
    };
    let t0 = Instant::now();
    let (mut child, registration) = match reaper::spawn(&mut cmd) {
        Ok(c) => c,
        Err(e) => {
            let exit = Exit::SpawnFailed(format!("{}: {e}", spec.qemu.display()));
            return finish(st, exit, Timings::default(), spec, command, Duration::ZERO);
        }
    };
    let pgid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<Event>();
    if let Some(out) = child.stdout.take() {
        let tx = tx.clone();
        std::thread::spawn(move || read_console(out, &tx));
    }
    if let Some(err) = child.stderr.take() {
        let tx = tx.clone();
        std::thread::spawn(move || read_stderr(err, &tx));
    }
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send(Event::Exited(status, Instant::now()));
    });
    let running = Running {
        pgid,
        waiter: Some(waiter),
        _registration: registration,
    };

    let deadline = t0 + spec.timeout;
    let mut timed_out = false;
    loop {
        if st.done() {
            break;
        }
        let until = match (&st.exited, &st.stopped) {
            (Some((_, at)), _) => (*at + CLOSE_GRACE).min(deadline.max(*at)),
            (None, Some((_, at))) => (*at + STOP_GRACE).min(deadline),
            (None, None) => deadline,
        };
        match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(ev) => {
                st.handle(ev, t0, on_line);
                if st.exited.is_none() && stop() {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                timed_out = st.exited.is_none() && st.stopped.is_none();
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // A silent guest at the timeout: did QEMU itself stop it (an I/O
    // error, a paused VM)? Then it is no hang of the kernel.
    if timed_out
        && let Some(q) = &qmp
        && let Ok(status) = crate::qmp::status(q)
        && !status.running
    {
        st.stopped = Some((
            format!("run state {} (QMP query-status)", status.status),
            Instant::now(),
        ));
        timed_out = false;
    }
    // Did the runner end a guest that QEMU had stopped?
    let stopped = match (&st.exited, &st.stopped) {
        (None, Some((line, at))) => Some((line.clone(), *at)),
        _ => None,
    };
    // Kill whatever is left of the group and reap QEMU, then take the lines
    // that were already on their way.
    drop(running);
    while !st.done() {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => st.handle(ev, t0, on_line),
            Err(_) => break,
        }
    }
    drop(disk);

    let mut timings = Timings {
        hello: st.console.hello_at,
        ready: st.console.ready_at,
        exit: None,
    };
    let (exit, elapsed) = match (&st.exited, stopped) {
        _ if timed_out => (Exit::TimedOut, spec.timeout),
        (_, Some((line, at))) => (Exit::GuestStopped(line), at.saturating_duration_since(t0)),
        (Some((Ok(status), at)), _) => {
            // The console reader may see the last lines after the waiter saw
            // the exit; the output came first.
            let d = at
                .saturating_duration_since(t0)
                .max(st.console.last_line_at.unwrap_or_default());
            timings.exit = Some(d);
            let exit = match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Status(c),
                (None, Some(s)) => Exit::Signal(s),
                (None, None) => Exit::Signal(0),
            };
            (exit, d)
        }
        (Some((Err(e), _)), _) => (
            Exit::SpawnFailed(format!("waiting for QEMU failed: {e}")),
            t0.elapsed(),
        ),
        (None, None) => (Exit::TimedOut, spec.timeout),
    };
    finish(st, exit, timings, spec, command, elapsed)
}

/// What the event loop has gathered so far.
struct State {
    console: Console,
    stderr_tail: Vec<String>,
    exited: Option<(std::io::Result<ExitStatus>, Instant)>,
    /// QEMU said on stderr that the guest was stopped: that line, when.
    stopped: Option<(String, Instant)>,
    out_closed: bool,
    err_closed: bool,
}

impl State {
    fn done(&self) -> bool {
        self.exited.is_some() && self.out_closed && self.err_closed
    }

    fn handle(&mut self, ev: Event, t0: Instant, on_line: &mut dyn FnMut(&ConsoleLine)) {
        match ev {
            Event::Line(bytes, at, end) => {
                let line = self
                    .console
                    .push(&bytes, at.saturating_duration_since(t0), end);
                on_line(&line);
            }
            Event::StdoutClosed => self.out_closed = true,
            Event::Stderr(l) => {
                if self.stopped.is_none() && guest_stopped(&l) {
                    self.stopped = Some((l.clone(), Instant::now()));
                }
                push_tail(&mut self.stderr_tail, l);
            }
            Event::StderrClosed => self.err_closed = true,
            Event::Exited(status, at) => self.exited = Some((status, at)),
        }
    }
}

fn finish(
    st: State,
    exit: Exit,
    timings: Timings,
    spec: &BootSpec,
    command: String,
    elapsed: Duration,
) -> BootOutcome {
    let State {
        console,
        stderr_tail,
        ..
    } = st;
    let judgement = verdict::judge(
        &console,
        &Ending {
            exit: &exit,
            stderr_tail: &stderr_tail,
            elapsed,
            quiet: verdict::quiet_window(spec.timeout),
        },
    );
    BootOutcome {
        judgement,
        console,
        timings,
        exit,
        stderr_tail,
        command,
    }
}

fn read_console(out: impl Read, tx: &Sender<Event>) {
    let mut r = BufReader::with_capacity(READ_BUFFER, out);
    let mut buf = Vec::new();
    while let Ok(Some(end)) = read_chunk(&mut r, &mut buf, MAX_LINE) {
        let line = std::mem::take(&mut buf);
        if tx.send(Event::Line(line, Instant::now(), end)).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::StdoutClosed);
}

fn read_stderr(err: impl Read, tx: &Sender<Event>) {
    let mut r = BufReader::new(err);
    let mut buf = Vec::new();
    while let Ok(Some(_)) = read_chunk(&mut r, &mut buf, STDERR_LINE) {
        let line = crate::console::printable(&std::mem::take(&mut buf));
        if tx.send(Event::Stderr(line)).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::StderrClosed);
}
