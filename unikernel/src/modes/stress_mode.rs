//! `mode=stress`: a scenario of the `stress` crate on every CPU, swapping
//! to the virtio-blk disk, for the request on the command line.
//!
//! The shared run driver (`stress::run::Driver`) does the work: CPU 0 sets
//! the workload up, every CPU runs its role, progress records and the
//! deadline come after each iteration, and the driver's watchdog runs in
//! CPU 0's timer tick (interrupt context: its `observe` uses atomics only).
//! When it declares a hang the CPUs unwind and CPU 0 prints the `Hang`
//! record — or, if they cannot be stopped, the tick prints it and exits.
//! The run ends with exactly one of: `Done{pass}` after a conservation audit
//! and teardown, `Failure` + `Done{fail}`, or `Hang`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use stress::platform::{IoError, PAGE_SIZE, Platform};
use stress::proto::{ExitCode, Record, StressRequest, Verdict};
use stress::run::{Driver, End};

use crate::{console, cpu, diag, disk, panic, qemu, smp, time};

/// The model's machine here: TSC time, virtio-blk swap, and waits that give
/// the host its core: a wait loop that has spun a while halts until the
/// next interrupt (a tick every [`STRESS_TICK_HZ`]), and delays halt
/// through whole ticks. Four vCPU threads share two host cores under TCG:
/// a spinning waiter took the core from the CPU it waited for.
pub struct KernelPlatform {
    disk: &'static disk::Disk,
}

impl Platform for KernelPlatform {
    fn now_ns(&self) -> u64 {
        time::now_ns()
    }

    fn pause(&self) {
        core::hint::spin_loop();
    }

    fn idle(&self) {
        time::sleep_until_interrupt();
    }

    fn delay(&self, ns: u64) {
        time::sleep_ns(ns);
    }

    fn swap_pages(&self) -> u64 {
        self.disk.capacity_pages()
    }

    fn swap_read(&self, blk: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let pages = (buf.len() / PAGE_SIZE) as u32;
        self.disk
            .read_pages(blk, buf)
            .map_err(|_| IoError { blk, pages })
    }

    fn swap_write(&self, blk: u64, buf: &[u8]) -> Result<(), IoError> {
        let pages = (buf.len() / PAGE_SIZE) as u32;
        self.disk
            .write_pages(blk, buf)
            .map_err(|_| IoError { blk, pages })
    }
}

type KernelDriver = Driver<KernelPlatform>;

/// Every CPU's tick during a run: a waiting CPU halts until its next
/// interrupt, so this bounds how late it sees what it waits for.
const STRESS_TICK_HZ: u64 = 10_000;

/// How long after declaring a hang the CPUs get to unwind before the tick
/// reports it on its own.
const GRACE_NS: u64 = 1_000_000_000;

static RUN: spin::Once<&'static KernelDriver> = spin::Once::new();
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whoever prints the hang first (CPU 0 after unwinding, or the tick).
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Runs `mode=stress` and exits.
pub fn run(req: &StressRequest) -> ! {
    let Some(disk) = disk::get() else {
        panic::fatal(format_args!(
            "mode=stress needs the virtio-blk swap disk, and none was found"
        ))
    };
    let n = cpu::count();
    let mut driver = Driver::for_request(KernelPlatform { disk }, req, n);
    let roles: Vec<&str> = driver.roles().iter().map(|r| r.name).collect();
    diag!(
        "stress: scenario {} variant {} seed {:#x} cpus {} roles {:?} duration {} ms, steer {}, {} frames, {} pbufs, swap {} pages",
        req.scenario(),
        req.variant,
        req.seed,
        n,
        roles,
        req.duration_ms,
        u8::from(req.knobs.steer),
        driver.vm.cfg.frames,
        driver.vm.cfg.pbufs,
        disk.capacity_pages()
    );

    let t0 = time::now_ns();
    let ready = driver.setup().is_ok();
    let d: &'static KernelDriver = Box::leak(Box::new(driver));
    if !ready {
        end(d)
    }
    diag!(
        "stress: set-up took {} ms ({} pages resident)",
        (time::now_ns() - t0) / 1_000_000,
        d.vm.resident()
    );

    RUN.call_once(|| d);
    d.start(
        Some(req.duration_ms * 1_000_000),
        Some(req.progress_ms * 1_000_000),
    );
    ACTIVE.store(true, Ordering::Release);
    time::set_tick_hook(Some(tick));

    smp::run_on_all(&|c| {
        time::set_tick_hz(STRESS_TICK_HZ);
        d.run_cpu(c, None, &mut console::record)
    });
    ACTIVE.store(false, Ordering::Release);
    end(d)
}

/// Prints where each CPU's time went (`stress::timers`), in ms of the run.
fn time_breakdown(d: &KernelDriver) {
    use core::fmt::Write;
    let roles = d.roles();
    let run_ms = d.vm.elapsed_ns() / 1_000_000;
    for cpu in 0..d.vm.timers.ncpus() {
        let mut line = alloc::string::String::new();
        let ns = d.vm.timers.of_cpu(cpu);
        for (b, v) in stress::timers::Bucket::ALL.iter().zip(ns) {
            if v > 0 {
                let _ = write!(line, " {} {}", b.name(), v / 1_000_000);
            }
        }
        let role = roles.get(cpu).map_or("?", |r| r.name);
        diag!("stress: time cpu {cpu} ({role}) of {run_ms} ms:{line}");
    }
}

/// The watchdog, in CPU 0's timer tick: atomics only, no allocation, except
/// for the last-resort report when the CPUs did not stop after a hang.
fn tick(cpu: usize) {
    if cpu != 0 || !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    let Some(d) = RUN.get() else { return };
    let now = time::now_ns();
    if d.observe(now) {
        return;
    }
    if let Some(at) = d.dog.hang_at()
        && now.saturating_sub(at) > GRACE_NS
        && !REPORTED.swap(true, Ordering::AcqRel)
    {
        // The CPUs did not unwind: report from here (no traces: their
        // rings may be locked by the interrupted code) and leave.
        if let Some(h) = d.dog.report(Vec::new()) {
            console::record(h.into_record());
        }
        qemu::exit(ExitCode::Hang);
    }
}

/// Prints the run's one ending and exits.
fn end(d: &KernelDriver) -> ! {
    time_breakdown(d);
    let done = |verdict: Verdict, code: ExitCode| -> ! {
        console::record(Record::Done {
            verdict,
            ms: d.vm.elapsed_ns() / 1_000_000,
            stats: Some(d.vm.counters.snapshot()),
        });
        qemu::exit(code)
    };
    match d.end() {
        End::Hang(h) => {
            if REPORTED.swap(true, Ordering::AcqRel) {
                // The tick is reporting it.
                loop {
                    core::hint::spin_loop();
                }
            }
            console::record(h.into_record());
            done(Verdict::Fail, ExitCode::Hang)
        }
        End::Failure(f) => {
            console::record(Record::Failure(f));
            done(Verdict::Fail, ExitCode::Fail)
        }
        End::Done { .. } => done(Verdict::Pass, ExitCode::Pass),
    }
}
