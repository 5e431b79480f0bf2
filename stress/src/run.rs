//! One run driver and one watchdog, for the host tests and the kernel alike.
//!
//! The scenario ([`crate::scenarios::Race`]) decides the roles and the loop
//! each CPU runs; the [`Driver`] owns the rest of a run's life: set-up on
//! CPU 0, the start of the clock, progress records and the deadline after
//! every iteration, the watchdog, and the one ending ([`End`]): the
//! oracle's `Failure`, a `Hang`, or `Done` after a conservation audit and a
//! teardown. The platform only provides CPUs: it calls [`Driver::run_cpu`]
//! on each of them and [`Driver::observe`] periodically — from a timer
//! interrupt in the kernel, so `observe` touches atomics only and never
//! allocates.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::failure::{Failure, FailureKind};
use crate::oracle::Census;
use crate::platform::Platform;
use crate::proto::{CpuWait, Record};
use crate::scenarios::{self, Race, Role};
use crate::trace::CpuTrace;
use crate::variant::Variant;
use crate::vm::{Res, Td, Vm, VmConfig, Wait};

/// The liveness watchdog: declares a hang when a CPU that has not finished
/// its role made no progress (no heartbeat) for `stall_ns`. Everything it
/// keeps is atomic and sized at construction, so [`Watchdog::observe`] can
/// run in an interrupt handler.
pub struct Watchdog {
    stall_ns: u64,
    done: Vec<AtomicBool>,
    last_beat: Vec<AtomicU64>,
    since: Vec<AtomicU64>,
    /// When the hang was declared (0: not declared).
    hang_at: AtomicU64,
    hang_wait: Vec<AtomicU64>,
    hang_stall: Vec<AtomicU64>,
    hang_done: Vec<AtomicBool>,
}

fn atomics(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn flags(n: usize) -> Vec<AtomicBool> {
    (0..n).map(|_| AtomicBool::new(false)).collect()
}

impl Watchdog {
    /// A watchdog over `ncpus` CPUs (every one counted as running).
    pub fn new(ncpus: usize, stall_ns: u64, now_ns: u64) -> Self {
        let w = Watchdog {
            stall_ns,
            done: flags(ncpus),
            last_beat: atomics(ncpus),
            since: atomics(ncpus),
            hang_at: AtomicU64::new(0),
            hang_wait: atomics(ncpus),
            hang_stall: atomics(ncpus),
            hang_done: flags(ncpus),
        };
        for s in &w.since {
            s.store(now_ns, Ordering::Relaxed);
        }
        w
    }

    /// Starts watching afresh from `now_ns` with the machine's heartbeats.
    pub fn reset<P: Platform>(&self, vm: &Vm<P>, now_ns: u64) {
        for (c, (b, s)) in self.last_beat.iter().zip(&self.since).enumerate() {
            b.store(vm.beat_of(c), Ordering::Relaxed);
            s.store(now_ns, Ordering::Relaxed);
        }
    }

    /// `cpu` finished its role (a finished CPU is never stalled).
    pub fn mark_done(&self, cpu: usize) {
        if let Some(d) = self.done.get(cpu) {
            d.store(true, Ordering::Release);
        }
    }

    /// `cpu` has not finished its role.
    pub fn mark_running(&self, cpu: usize) {
        if let Some(d) = self.done.get(cpu) {
            d.store(false, Ordering::Release);
        }
    }

    /// Whether `cpu` finished its role.
    pub fn is_done(&self, cpu: usize) -> bool {
        self.done
            .get(cpu)
            .is_some_and(|d| d.load(Ordering::Acquire))
    }

    /// Whether every CPU finished.
    pub fn all_done(&self) -> bool {
        self.done.iter().all(|d| d.load(Ordering::Acquire))
    }

    /// Looks at the heartbeats. On a hang it captures what every CPU waits
    /// on, stops the run and returns true (once). Atomics only.
    pub fn observe<P: Platform>(&self, vm: &Vm<P>, now_ns: u64) -> bool {
        if self.hang_at.load(Ordering::Acquire) != 0 {
            return false;
        }
        let mut stuck = false;
        for c in 0..self.done.len() {
            let b = vm.beat_of(c);
            if b != self.last_beat[c].load(Ordering::Relaxed) {
                self.last_beat[c].store(b, Ordering::Relaxed);
                self.since[c].store(now_ns, Ordering::Relaxed);
            } else if !self.is_done(c)
                && now_ns.saturating_sub(self.since[c].load(Ordering::Relaxed)) > self.stall_ns
            {
                stuck = true;
            }
        }
        if !stuck || vm.stopped() {
            return false;
        }
        for c in 0..self.done.len() {
            self.hang_wait[c].store(vm.wait_of(c).encode(), Ordering::Relaxed);
            self.hang_done[c].store(self.is_done(c), Ordering::Relaxed);
            self.hang_stall[c].store(
                now_ns.saturating_sub(self.since[c].load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        self.hang_at.store(now_ns.max(1), Ordering::Release);
        vm.request_stop();
        true
    }

    /// When the hang was declared, if it was.
    pub fn hang_at(&self) -> Option<u64> {
        match self.hang_at.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// The hang the watchdog declared, with `traces` (empty when the CPUs
    /// could not be stopped to read them). Allocates: not for interrupts.
    pub fn report(&self, traces: Vec<CpuTrace>) -> Option<HangReport> {
        self.hang_at()?;
        let waits: Vec<CpuWait> = (0..self.done.len())
            .map(|c| {
                let w = Wait::decode(self.hang_wait[c].load(Ordering::Relaxed));
                let wait = match w {
                    Wait::Running if self.hang_done[c].load(Ordering::Relaxed) => "finished".into(),
                    Wait::Running => "running, no heartbeat".into(),
                    w => format!("{w}"),
                };
                CpuWait {
                    cpu: c as u32,
                    wait,
                    stalled_ms: self.hang_stall[c].load(Ordering::Relaxed) / 1_000_000,
                }
            })
            .collect();
        let ms = waits.iter().map(|w| w.stalled_ms).max().unwrap_or(0);
        Some(HangReport { ms, waits, traces })
    }
}

/// A hang as the watchdog saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HangReport {
    /// The longest stall, in ms.
    pub ms: u64,
    /// What every CPU waits on.
    pub waits: Vec<CpuWait>,
    /// Every CPU's last trace events.
    pub traces: Vec<CpuTrace>,
}

impl HangReport {
    /// The `Hang` record.
    pub fn into_record(self) -> Record {
        Record::Hang {
            ms: self.ms,
            waits: self.waits,
            traces: self.traces,
        }
    }

    /// One line: what every CPU waits on.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .waits
            .iter()
            .map(|w| format!("cpu{}: {} ({} ms)", w.cpu, w.wait, w.stalled_ms))
            .collect();
        format!("no progress for {} ms: {}", self.ms, parts.join("; "))
    }
}

/// How a run ended.
#[derive(Debug)]
pub enum End {
    /// An oracle fired (during the run, or the final conservation audit).
    Failure(Failure),
    /// The watchdog saw no progress.
    Hang(HangReport),
    /// A clean end: the census after the run and after the teardown.
    Done {
        /// The census after the run.
        before: Census,
        /// The census after the teardown.
        after: Census,
    },
}

/// One stress run of a scenario's variant on one machine.
pub struct Driver<P: Platform> {
    /// The machine.
    pub vm: Vm<P>,
    race: Box<dyn Race<P>>,
    roles: Vec<Role>,
    /// The hang watchdog.
    pub dog: Watchdog,
    seed: u64,
    progress_ns: AtomicU64,
    next_progress: AtomicU64,
    deadline: AtomicU64,
}

impl<P: Platform> Driver<P> {
    /// The machine and the plain (unsteered) workload for `variant`/`seed`
    /// on `ncpus` CPUs, with a watchdog declaring a hang after `stall_ns`
    /// without progress (host tests).
    pub fn new(p: P, variant: Variant, seed: u64, ncpus: usize, stall_ns: u64) -> Self {
        let knobs = scenarios::Knobs::UNSTEERED;
        Self::with_config(p, variant, seed, knobs, ncpus, stall_ns, |_| {})
    }

    /// The machine and workload a stress request asks for, on `ncpus` CPUs.
    pub fn for_request(p: P, req: &crate::proto::StressRequest, ncpus: usize) -> Self {
        let stall_ns = req.stall_ms.saturating_mul(1_000_000);
        Self::with_config(p, req.variant, req.seed, req.knobs, ncpus, stall_ns, |_| {})
    }

    /// [`Driver::new`] with `knobs`, letting `tune` adjust the machine
    /// first (tests).
    pub fn with_config(
        p: P,
        variant: Variant,
        seed: u64,
        knobs: scenarios::Knobs,
        ncpus: usize,
        stall_ns: u64,
        tune: impl FnOnce(&mut VmConfig),
    ) -> Self {
        let race = scenarios::race::<P>(variant.scenario_id(), seed, knobs);
        let mut cfg = race.config(variant, ncpus);
        tune(&mut cfg);
        let now = p.now_ns();
        let roles = race.roles(ncpus);
        Driver {
            vm: Vm::new(p, cfg),
            race,
            roles,
            dog: Watchdog::new(ncpus, stall_ns, now),
            seed,
            progress_ns: AtomicU64::new(0),
            next_progress: AtomicU64::new(u64::MAX),
            deadline: AtomicU64::new(u64::MAX),
        }
    }

    /// The role of every CPU.
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    /// Builds the workload's processes on CPU 0. `Err(Stop)` means the run
    /// already ended (an oracle fired during set-up: see [`Driver::end`]).
    pub fn setup(&mut self) -> Res<()> {
        let mut td = Td::new(0, self.seed);
        self.race.setup(&self.vm, &mut td)
    }

    /// Starts the run proper: restarts the clock and the watchdog; the run
    /// finishes `duration_ns` from now (None: when the budgets are spent)
    /// and prints progress every `progress_ns` (None: never).
    pub fn start(&self, duration_ns: Option<u64>, progress_ns: Option<u64>) {
        self.vm.restart_clock();
        let now = self.vm.p.now_ns();
        for c in 0..self.roles.len() {
            self.dog.mark_running(c);
        }
        self.dog.reset(&self.vm, now);
        if let Some(p) = progress_ns {
            self.progress_ns.store(p, Ordering::Relaxed);
            self.next_progress
                .store(now.saturating_add(p), Ordering::Relaxed);
        }
        if let Some(d) = duration_ns {
            self.deadline
                .store(now.saturating_add(d), Ordering::Relaxed);
        }
    }

    /// Runs `cpu`'s role until the run finishes. A leading role stops after
    /// `budget` iterations (None: no budget). `emit` gets the progress records.
    pub fn run_cpu(&self, cpu: usize, budget: Option<u64>, emit: &mut dyn FnMut(Record)) {
        let mut td = Td::new(cpu, self.seed);
        let budget = budget.filter(|_| self.roles.get(cpu).is_some_and(|r| r.leads));
        let mut after = |vm: &Vm<P>| self.after(vm, emit);
        let _ = self
            .race
            .run_cpu(&self.vm, &mut td, cpu, self.roles.len(), budget, &mut after);
        self.dog.mark_done(cpu);
    }

    /// After every iteration of every CPU: progress when due, the deadline.
    fn after(&self, vm: &Vm<P>, emit: &mut dyn FnMut(Record)) {
        let now = vm.p.now_ns();
        let next = self.next_progress.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_progress
                .compare_exchange(
                    next,
                    now + self.progress_ns.load(Ordering::Relaxed),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            emit(Record::Progress {
                ms: vm.elapsed_ns() / 1_000_000,
                stats: vm.counters.snapshot(),
            });
        }
        if now >= self.deadline.load(Ordering::Relaxed) {
            vm.request_finish();
        }
    }

    /// The periodic check (atomics only, no allocation: the kernel calls it
    /// from a timer interrupt): once every leading CPU is done the others
    /// are asked to finish; the watchdog looks for a stall. True when it
    /// just declared a hang.
    pub fn observe(&self, now_ns: u64) -> bool {
        let leaders_done = self
            .roles
            .iter()
            .enumerate()
            .all(|(c, r)| !r.leads || self.dog.is_done(c));
        if leaders_done {
            self.vm.request_finish();
        }
        self.dog.observe(&self.vm, now_ns)
    }

    /// Whether every CPU finished its role.
    pub fn all_done(&self) -> bool {
        self.dog.all_done()
    }

    /// The run's one ending, once every CPU is back (or the hang was
    /// declared): the hang, the oracle's failure, or — on a clean end —
    /// the conservation audit, the teardown and the audit again (every
    /// frame and swap block free), any imbalance being a `conservation`
    /// failure.
    pub fn end(&self) -> End {
        if let Some(h) = self.dog.report(self.vm.trace.snapshot()) {
            return End::Hang(h);
        }
        if let Some(f) = self.vm.failure() {
            return End::Failure(f);
        }
        let audit = self.vm.check_conservation().and_then(|before| {
            let mut td = Td::new(0, self.seed);
            self.vm
                .teardown(&mut td)
                .map_err(|_| String::from("teardown was stopped"))
                .and_then(|_| self.vm.check_conservation())
                .and_then(|after| {
                    if after.free_frames == after.frames
                        && after.swap_used == 0
                        && after.objects == 0
                    {
                        Ok((before, after))
                    } else {
                        Err(format!("after teardown: {after:?}"))
                    }
                })
        });
        match audit {
            Ok((before, after)) => match self.vm.failure() {
                Some(f) => End::Failure(f),
                None => End::Done { before, after },
            },
            Err(why) => End::Failure(self.vm.fail_from(0, FailureKind::Conservation, why)),
        }
    }
}
