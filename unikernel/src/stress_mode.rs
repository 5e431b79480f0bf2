//! `mode=stress`: the VM model of the `stress` crate on every CPU, swapping
//! to the virtio-blk disk, for a given variant, seed and duration.
//!
//! CPU 0 sets the workload up, then every CPU runs its role
//! (`stress::workload::roles`). Whichever CPU finishes an iteration after
//! the progress period prints a `Progress` record; the first one past the
//! deadline asks everybody to finish. A watchdog in CPU 0's timer tick
//! (interrupt context: atomics only) notices a CPU without heartbeat for
//! `stall_ms`, captures what every CPU waits on and stops the run; CPU 0 then
//! prints the `Hang` record — or, if the CPUs cannot be stopped, the tick
//! prints it and exits. The run ends with exactly one of: `Done{pass}` after
//! a conservation audit and teardown, `Failure` + `Done{fail}`, or `Hang`.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use stress::FailureKind;
use stress::platform::{IoError, PAGE_SIZE, Platform};
use stress::proto::{CpuWait, ExitCode, Record, Verdict};
use stress::vm::{Td, Vm, Wait};
use stress::workload::{Workload, roles};

use crate::cmdline::StressArgs;
use crate::cpu::{self, MAX_CPUS};
use crate::{console, diag, disk, panic, qemu, smp, time};

/// The model's machine here: TSC time, spinning waits, virtio-blk swap.
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

    fn delay(&self, ns: u64) {
        time::delay_ns(ns);
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

type KernelVm = Vm<KernelPlatform>;

/// How long after declaring a hang the CPUs get to unwind before the tick
/// reports it on its own.
const GRACE_NS: u64 = 1_000_000_000;

static VM: spin::Once<&'static KernelVm> = spin::Once::new();
static ACTIVE: AtomicBool = AtomicBool::new(false);
static STALL_NS: AtomicU64 = AtomicU64::new(0);
static DEADLINE: AtomicU64 = AtomicU64::new(u64::MAX);
static NEXT_PROGRESS: AtomicU64 = AtomicU64::new(u64::MAX);
static PROGRESS_NS: AtomicU64 = AtomicU64::new(0);
static DONE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static LAST_BEAT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static SINCE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// When the watchdog declared a hang (0: it did not).
static HANG_AT: AtomicU64 = AtomicU64::new(0);
static HANG_WAIT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static HANG_STALL: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Whether each CPU had finished its role when the hang was declared.
static HANG_DONE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Runs `mode=stress` and exits.
pub fn run(args: &StressArgs) -> ! {
    let Some(disk) = disk::get() else {
        panic::fatal(format_args!(
            "mode=stress needs the virtio-blk swap disk, and none was found"
        ))
    };
    let n = cpu::count();
    let w = Workload::for_seed(args.seed).steered(args.steer);
    let vm: &'static KernelVm = Box::leak(Box::new(Vm::new(
        KernelPlatform { disk },
        w.vm_config(args.variant, n),
    )));
    VM.call_once(|| vm);
    let roles = roles(n);
    diag!(
        "stress: variant {} seed {:#x} cpus {} roles {:?} duration {} ms, steer {}, {} frames, {} pbufs, swap {} pages",
        args.variant,
        args.seed,
        n,
        roles,
        args.duration_ms,
        u8::from(args.steer),
        vm.cfg.frames,
        vm.cfg.pbufs,
        disk.capacity_pages()
    );

    let mut td0 = Td::new(0, args.seed);
    let t0 = time::now_ns();
    let Ok(parents) = vm.setup(&mut td0, &w) else {
        end(vm, &mut td0)
    };
    diag!(
        "stress: set-up took {} ms ({} pages resident)",
        (time::now_ns() - t0) / 1_000_000,
        vm.resident()
    );

    vm.restart_clock();
    let now = time::now_ns();
    for c in 0..n {
        DONE[c].store(false, Ordering::Relaxed);
        LAST_BEAT[c].store(vm.beat_of(c), Ordering::Relaxed);
        SINCE[c].store(now, Ordering::Relaxed);
    }
    STALL_NS.store(args.stall_ms * 1_000_000, Ordering::Relaxed);
    PROGRESS_NS.store(args.progress_ms * 1_000_000, Ordering::Relaxed);
    NEXT_PROGRESS.store(now + args.progress_ms * 1_000_000, Ordering::Relaxed);
    DEADLINE.store(now + args.duration_ms * 1_000_000, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Release);
    time::set_tick_hook(Some(tick));

    smp::run_on_all(&|c| {
        let mut td = Td::new(c, args.seed);
        let _ = vm.run_role_with(&mut td, &w, &parents, roles[c], None, after);
        DONE[c].store(true, Ordering::Release);
    });
    ACTIVE.store(false, Ordering::Release);
    end(vm, &mut td0)
}

/// After every iteration of every CPU: progress when due, the deadline.
fn after(vm: &KernelVm) {
    let now = time::now_ns();
    let next = NEXT_PROGRESS.load(Ordering::Relaxed);
    if now >= next
        && NEXT_PROGRESS
            .compare_exchange(
                next,
                now + PROGRESS_NS.load(Ordering::Relaxed),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    {
        console::record(Record::Progress {
            ms: vm.elapsed_ns() / 1_000_000,
            stats: vm.counters.snapshot(),
        });
    }
    if now >= DEADLINE.load(Ordering::Relaxed) {
        vm.request_finish();
    }
}

/// The watchdog, in CPU 0's timer tick: atomics only, no allocation, except
/// for the last-resort report when the CPUs did not stop after a hang.
fn tick(cpu: usize) {
    if cpu != 0 || !ACTIVE.load(Ordering::Acquire) {
        return;
    }
    let Some(vm) = VM.get() else { return };
    let now = time::now_ns();
    let hang_at = HANG_AT.load(Ordering::Acquire);
    if hang_at == 0 {
        let stall = STALL_NS.load(Ordering::Relaxed);
        let mut stuck = false;
        for c in 0..cpu::count() {
            let b = vm.beat_of(c);
            if b != LAST_BEAT[c].load(Ordering::Relaxed) {
                LAST_BEAT[c].store(b, Ordering::Relaxed);
                SINCE[c].store(now, Ordering::Relaxed);
            } else if !DONE[c].load(Ordering::Acquire)
                && now.saturating_sub(SINCE[c].load(Ordering::Relaxed)) > stall
            {
                stuck = true;
            }
        }
        if stuck && !vm.stopped() {
            for c in 0..cpu::count() {
                HANG_WAIT[c].store(vm.wait_of(c).encode(), Ordering::Relaxed);
                HANG_DONE[c].store(DONE[c].load(Ordering::Acquire), Ordering::Relaxed);
                HANG_STALL[c].store(
                    now.saturating_sub(SINCE[c].load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
            }
            HANG_AT.store(now, Ordering::Release);
            vm.request_stop();
        }
    } else if now.saturating_sub(hang_at) > GRACE_NS && !REPORTED.swap(true, Ordering::AcqRel) {
        // The CPUs did not unwind: report from here (no traces: their
        // rings may be locked by the interrupted code) and leave.
        console::record(hang_record(Vec::new()));
        qemu::exit(ExitCode::Hang);
    }
}

/// The `Hang` record from what the watchdog captured.
fn hang_record(traces: Vec<stress::trace::CpuTrace>) -> Record {
    let n = cpu::count();
    let waits: Vec<CpuWait> = (0..n)
        .map(|c| {
            let w = Wait::decode(HANG_WAIT[c].load(Ordering::Relaxed));
            let wait = match w {
                Wait::Running if HANG_DONE[c].load(Ordering::Relaxed) => "finished".into(),
                Wait::Running => "running, no heartbeat".into(),
                w => format!("{w}"),
            };
            CpuWait {
                cpu: c as u32,
                wait,
                stalled_ms: HANG_STALL[c].load(Ordering::Relaxed) / 1_000_000,
            }
        })
        .collect();
    let ms = waits.iter().map(|w| w.stalled_ms).max().unwrap_or(0);
    Record::Hang { ms, waits, traces }
}

/// Prints the run's one ending and exits.
fn end(vm: &KernelVm, td: &mut Td) -> ! {
    let stats = || Some(vm.counters.snapshot());
    let done = |verdict: Verdict, code: ExitCode| -> ! {
        console::record(Record::Done {
            verdict,
            ms: vm.elapsed_ns() / 1_000_000,
            stats: stats(),
        });
        qemu::exit(code)
    };
    if HANG_AT.load(Ordering::Acquire) != 0 {
        if REPORTED.swap(true, Ordering::AcqRel) {
            // The tick is reporting it.
            loop {
                core::hint::spin_loop();
            }
        }
        console::record(hang_record(vm.trace.snapshot()));
        done(Verdict::Fail, ExitCode::Hang);
    }
    if let Some(f) = vm.failure() {
        console::record(Record::Failure(f));
        done(Verdict::Fail, ExitCode::Fail);
    }
    // A clean end: the books must balance now, and again once everything
    // has been torn down (every frame and swap block free).
    let audit = vm.check_conservation().and_then(|_| {
        vm.teardown(td)
            .map_err(|_| "teardown was stopped".into())
            .and_then(|_| vm.check_conservation())
            .and_then(|c| {
                if c.free_frames == c.frames && c.swap_used == 0 && c.objects == 0 {
                    Ok(())
                } else {
                    Err(format!("after teardown: {c:?}"))
                }
            })
    });
    if let Err(why) = audit {
        vm.fail_from(0, FailureKind::Conservation, why);
    }
    if let Some(f) = vm.failure() {
        console::record(Record::Failure(f));
        done(Verdict::Fail, ExitCode::Fail);
    }
    done(Verdict::Pass, ExitCode::Pass)
}
