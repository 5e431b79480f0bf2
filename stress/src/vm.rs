//! The machine-wide state of one model run (`Vm`), the per-thread context
//! (`Td`, FreeBSD's `curthread`), and the run's stop/failure/wait plumbing.
//!
//! A run stops at its first failure: the oracle that saw it records a
//! [`Failure`] value and every model function then returns `Err(Stop)` up to
//! the workload loop (no panics). Every wait loop goes through [`Vm::pause`],
//! which publishes what the CPU waits on for the liveness watchdog.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::failure::{Failure, FailureKind};
use crate::image::Images;
use crate::page::PageTable;
use crate::pbuf::PbufPool;
use crate::platform::{Platform, Site};
use crate::sites::{Sites, Window};
use crate::stats::{Counter, Counters};
use crate::swap::SwapSpace;
use crate::timers::{Bucket, Timers};
use crate::trace::{Ev, TraceEvent, TraceRings};
use crate::variant::Variant;

/// A wait loop spins at least this many turns and [`SPIN_NS`] before it
/// gives the CPU away between attempts ([`Platform::idle`]).
pub const SPINS_BEFORE_IDLE: u32 = 16;
/// See [`SPINS_BEFORE_IDLE`].
pub const SPIN_NS: u64 = 20_000;

/// The run is over (a failure was recorded, or the harness stopped it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop;

/// Result of every model operation that can wait or see a failure.
pub type Res<T> = Result<T, Stop>;

/// What a CPU is waiting on (published for the watchdog's hang report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not waiting.
    Running,
    /// An object lock: object id.
    ObjectLock(u32),
    /// A map lock, shared: image id.
    MapRead(u32),
    /// A map lock, exclusive: image id.
    MapWrite(u32),
    /// A pmap lock: image id.
    Pmap(u32),
    /// A busy page.
    Busy {
        /// Object id.
        obj: u32,
        /// Page index.
        pindex: u32,
    },
    /// A free pbuf (`getpbuf`).
    Pbuf,
    /// Paging-in-progress of an object to drain.
    Pip(u32),
    /// Free pages.
    FreePages,
    /// A short internal lock (frame data, pv list, free list, swap map).
    Internal,
    /// A scripted test holds this CPU at a site.
    Script(Site),
}

impl Wait {
    /// A 64-bit code for the wait (so it can be kept in an atomic).
    pub fn encode(self) -> u64 {
        let (tag, a, b): (u64, u64, u64) = match self {
            Wait::Running => (0, 0, 0),
            Wait::ObjectLock(o) => (1, o as u64, 0),
            Wait::MapRead(i) => (2, i as u64, 0),
            Wait::MapWrite(i) => (3, i as u64, 0),
            Wait::Pmap(i) => (4, i as u64, 0),
            Wait::Busy { obj, pindex } => (5, obj as u64, pindex as u64),
            Wait::Pbuf => (6, 0, 0),
            Wait::Pip(o) => (7, o as u64, 0),
            Wait::FreePages => (8, 0, 0),
            Wait::Internal => (9, 0, 0),
            Wait::Script(s) => (10, s as u64, 0),
        };
        (tag << 56) | ((a & 0xff_ffff) << 32) | (b & 0xffff_ffff)
    }

    /// The wait a code stands for.
    pub fn decode(v: u64) -> Wait {
        let (tag, a, b) = (v >> 56, ((v >> 32) & 0xff_ffff) as u32, v as u32);
        match tag {
            1 => Wait::ObjectLock(a),
            2 => Wait::MapRead(a),
            3 => Wait::MapWrite(a),
            4 => Wait::Pmap(a),
            5 => Wait::Busy { obj: a, pindex: b },
            6 => Wait::Pbuf,
            7 => Wait::Pip(a),
            8 => Wait::FreePages,
            9 => Wait::Internal,
            10 => Wait::Script(
                Site::ALL
                    .into_iter()
                    .find(|s| *s as u32 == a)
                    .unwrap_or(Site::ForkLocked),
            ),
            _ => Wait::Running,
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Wait::Running => f.write_str("running"),
            Wait::ObjectLock(o) => write!(f, "lock of object {o}"),
            Wait::MapRead(i) => write!(f, "map lock (shared) of image {i}"),
            Wait::MapWrite(i) => write!(f, "map lock (exclusive) of image {i}"),
            Wait::Pmap(i) => write!(f, "pmap lock of image {i}"),
            Wait::Busy { obj, pindex } => write!(f, "busy page: object {obj} pindex {pindex}"),
            Wait::Pbuf => f.write_str("a pbuf (getpbuf)"),
            Wait::Pip(o) => write!(f, "paging-in-progress of object {o} to drain"),
            Wait::FreePages => f.write_str("free pages"),
            Wait::Internal => f.write_str("an internal lock"),
            Wait::Script(s) => write!(f, "scripted hold at {s}"),
        }
    }
}

/// Injects a delay at `site` with probability `per_64k / 65536`, up to `max_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delay {
    /// Where.
    pub site: Site,
    /// Chance, per 65536 passes.
    pub per_64k: u32,
    /// Longest delay, ns.
    pub max_ns: u64,
}

/// Parameters of the machine the model simulates.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// The variant this machine runs (its name labels failures).
    pub variant: Variant,
    /// The switchable sites the model reads (the variant's setting).
    pub sites: Sites,
    /// The model event that counts as the scenario's race window.
    pub window: Window,
    /// Seed of the run's random streams.
    pub seed: u64,
    /// CPUs (threads) that will run model code.
    pub ncpus: usize,
    /// Physical pages the model manages.
    pub frames: usize,
    /// Read pbufs (`nsw_rcount`).
    pub pbufs: usize,
    /// Image slots (parents and children).
    pub image_slots: usize,
    /// Injected delays.
    pub delays: Vec<Delay>,
}

impl VmConfig {
    /// A small machine for tests.
    pub fn small(variant: Variant, seed: u64, ncpus: usize) -> Self {
        VmConfig {
            variant,
            sites: variant.sites(),
            window: variant.scenario().window,
            seed,
            ncpus,
            frames: 256,
            pbufs: 1,
            image_slots: 4,
            delays: Vec::new(),
        }
    }
}

/// Per-thread context (FreeBSD's `curthread`): the CPU and its random stream.
pub struct Td {
    /// The CPU index.
    pub cpu: usize,
    /// This thread's random stream.
    pub rng: oorandom::Rand64,
    /// Whether injected delays apply to this thread (the workload turns
    /// them off for the fork loop, so that it forks often while faulting
    /// threads linger in the windows).
    pub delays: bool,
}

impl Td {
    /// Runs `f` with this thread's injected delays off (restored after).
    pub fn undelayed<R>(&mut self, f: impl FnOnce(&mut Td) -> R) -> R {
        let delays = core::mem::replace(&mut self.delays, false);
        let r = f(self);
        self.delays = delays;
        r
    }

    /// Thread context for `cpu`, its random stream derived from `seed`.
    pub fn new(cpu: usize, seed: u64) -> Self {
        let mix = seed ^ (cpu as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Td {
            cpu,
            rng: oorandom::Rand64::new(mix as u128 | ((seed as u128) << 64)),
            delays: true,
        }
    }

    /// Uniform in `[0, n)` (0 when n == 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.rand_range(0..n) }
    }

    /// True with probability `per_64k / 65536`.
    pub fn chance(&mut self, per_64k: u32) -> bool {
        (self.rng.rand_u64() & 0xffff) < per_64k as u64
    }
}

/// Clears a CPU's published wait when dropped.
pub struct WaitGuard<'a> {
    slot: &'a AtomicU64,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.slot.store(Wait::Running.encode(), Ordering::Relaxed);
    }
}

/// One model run's machine.
pub struct Vm<P: Platform> {
    /// The host platform.
    pub p: P,
    /// Its configuration.
    pub cfg: VmConfig,
    pub(crate) pages: PageTable,
    pub(crate) swap: SwapSpace,
    pub(crate) pbufs: PbufPool,
    pub(crate) images: Images,
    /// Event counters per CPU.
    pub counters: Counters,
    /// Per-CPU trace rings.
    pub trace: TraceRings,
    /// Where each CPU's time goes.
    pub timers: Timers,
    start_ns: AtomicU64,
    stop: AtomicBool,
    finish: AtomicBool,
    failure: spin::Mutex<Option<Failure>>,
    waits: Vec<AtomicU64>,
    beats: Vec<AtomicU64>,
    next_obj: AtomicU32,
    pub(crate) live_objects: AtomicU32,
    pub(crate) hand: crate::pageout::Hand,
}

impl<P: Platform> Vm<P> {
    /// A fresh machine: every frame free, swap empty, no images.
    pub fn new(p: P, cfg: VmConfig) -> Self {
        let n = cfg.ncpus.max(1);
        let swap_pages = p.swap_pages();
        let start_ns = p.now_ns();
        Vm {
            pages: PageTable::new(cfg.frames),
            swap: SwapSpace::new(swap_pages),
            pbufs: PbufPool::new(cfg.pbufs),
            images: Images::new(cfg.image_slots),
            counters: Counters::new(n),
            trace: TraceRings::new(n),
            timers: Timers::new(n),
            start_ns: AtomicU64::new(start_ns),
            stop: AtomicBool::new(false),
            finish: AtomicBool::new(false),
            failure: spin::Mutex::new(None),
            waits: (0..n).map(|_| AtomicU64::new(0)).collect(),
            beats: (0..n).map(|_| AtomicU64::new(0)).collect(),
            next_obj: AtomicU32::new(1),
            live_objects: AtomicU32::new(0),
            hand: crate::pageout::Hand::new(),
            p,
            cfg,
        }
    }

    /// Frames in use (resident pages).
    pub fn resident(&self) -> usize {
        self.pages.len() - self.pages.free_count()
    }

    /// The variant this machine runs.
    pub fn variant(&self) -> Variant {
        self.cfg.variant
    }

    /// A model event that opens some scenario's race window: counted in
    /// `window_hits` when it is this run's window.
    pub fn window(&self, td: &Td, w: Window) {
        if w == self.cfg.window {
            self.count(td, Counter::window_hits);
        }
    }

    /// Nanoseconds since the run started.
    pub fn elapsed_ns(&self) -> u64 {
        self.p
            .now_ns()
            .saturating_sub(self.start_ns.load(Ordering::Relaxed))
    }

    /// Restarts the run clock (after set-up: times in records and failures
    /// count from the start of the run proper).
    pub fn restart_clock(&self) {
        self.start_ns.store(self.p.now_ns(), Ordering::Relaxed);
    }

    pub(crate) fn new_object_id(&self) -> u32 {
        self.live_objects.fetch_add(1, Ordering::Relaxed);
        self.next_obj.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds one to a counter on this CPU.
    #[inline]
    pub fn count(&self, td: &Td, c: Counter) {
        self.counters.inc(td.cpu, c);
    }

    /// Adds `n` to a counter on this CPU.
    #[inline]
    pub fn count_n(&self, td: &Td, c: Counter, n: u64) {
        self.counters.add(td.cpu, c, n);
    }

    /// Records a trace event on this CPU's ring.
    #[inline]
    pub fn trace(&self, td: &Td, ev: Ev, obj: u32, pindex: u64, arg: u64) {
        self.trace.push(
            td.cpu,
            TraceEvent {
                t: self.elapsed_ns(),
                ev,
                obj,
                pindex: pindex as u32,
                arg: arg as u32,
            },
        );
    }

    /// Passes a named site: scripted gates, scheduling point, delay injection.
    pub fn site(&self, td: &mut Td, site: Site) -> Res<()> {
        self.p.site(td.cpu, site);
        if td.delays
            && let Some(d) = self.cfg.delays.iter().find(|d| d.site == site)
            && td.chance(d.per_64k)
        {
            let ns = 1 + td.below(d.max_ns.max(1));
            self.count(td, Counter::delays);
            self.trace(td, Ev::Delay, 0, 0, site as u64);
            self.p.delay(ns);
            self.timers.add(td.cpu, Bucket::Delay, ns);
        }
        self.check()
    }

    /// `Err(Stop)` once the run is over.
    #[inline]
    pub fn check(&self) -> Res<()> {
        if self.stop.load(Ordering::Relaxed) {
            Err(Stop)
        } else {
            Ok(())
        }
    }

    /// One turn of a wait loop.
    #[inline]
    pub fn pause(&self, _td: &Td) -> Res<()> {
        self.p.pause();
        self.check()
    }

    /// Publishes that this CPU waits on `w` until the guard drops.
    pub fn waiting(&self, td: &Td, w: Wait) -> WaitGuard<'_> {
        let slot = &self.waits[td.cpu.min(self.waits.len() - 1)];
        slot.store(w.encode(), Ordering::Relaxed);
        WaitGuard { slot }
    }

    /// Waits as `w` until `cond` holds.
    pub fn wait_until(&self, td: &Td, w: Wait, mut cond: impl FnMut() -> bool) -> Res<()> {
        self.wait_for(td, w, || cond().then_some(()))
    }

    /// Waits as `w` until `attempt` succeeds (a lock, a buffer): tries
    /// once, then [`Self::keep_trying`].
    pub(crate) fn wait_for<T>(
        &self,
        td: &Td,
        w: Wait,
        mut attempt: impl FnMut() -> Option<T>,
    ) -> Res<T> {
        match attempt() {
            Some(v) => Ok(v),
            None => self.keep_trying(td, w, attempt),
        }
    }

    /// After a failed first attempt: publishes that this CPU waits as `w`
    /// and pauses between attempts until one succeeds (or the run stops).
    pub(crate) fn keep_trying<T>(
        &self,
        td: &Td,
        w: Wait,
        mut attempt: impl FnMut() -> Option<T>,
    ) -> Res<T> {
        let _g = self.waiting(td, w);
        let t0 = self.p.now_ns();
        let mut spins = 0u32;
        let r = loop {
            // Spin a while (most waits are short), then give the CPU away
            // between attempts.
            spins = spins.saturating_add(1);
            if spins > SPINS_BEFORE_IDLE && self.p.now_ns().saturating_sub(t0) > SPIN_NS {
                self.p.idle();
            } else {
                self.p.pause();
            }
            if let Err(e) = self.check() {
                break Err(e);
            }
            if let Some(v) = attempt() {
                break Ok(v);
            }
        };
        self.time_since(td, Bucket::of_wait(w), t0);
        r
    }

    /// Adds the time since `t0` (from `p.now_ns()`) to this CPU's bucket.
    #[inline]
    pub fn time_since(&self, td: &Td, b: Bucket, t0: u64) {
        self.timers
            .add(td.cpu, b, self.p.now_ns().saturating_sub(t0));
    }

    /// What every CPU waits on now.
    pub fn waits(&self) -> Vec<Wait> {
        self.waits
            .iter()
            .map(|w| Wait::decode(w.load(Ordering::Relaxed)))
            .collect()
    }

    /// Marks one unit of progress for this CPU (the watchdog's heartbeat).
    #[inline]
    pub fn beat(&self, td: &Td) {
        if let Some(b) = self.beats.get(td.cpu) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One CPU's heartbeat count (no allocation: usable from an interrupt).
    pub fn beat_of(&self, cpu: usize) -> u64 {
        self.beats.get(cpu).map_or(0, |b| b.load(Ordering::Relaxed))
    }

    /// What one CPU waits on now (no allocation).
    pub fn wait_of(&self, cpu: usize) -> Wait {
        self.waits
            .get(cpu)
            .map_or(Wait::Running, |w| Wait::decode(w.load(Ordering::Relaxed)))
    }

    /// Every CPU's heartbeat count.
    pub fn beats(&self) -> Vec<u64> {
        self.beats
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// Records a failure (the first one wins), stops the run, and returns
    /// `Stop` for the caller to propagate.
    pub fn fail(&self, td: &Td, kind: FailureKind, detail: String) -> Stop {
        let k = FailureKind::ALL
            .iter()
            .position(|x| *x == kind)
            .unwrap_or(0);
        self.trace(td, Ev::Oracle, 0, 0, k as u64);
        self.fail_from(td.cpu as u32, kind, detail);
        Stop
    }

    /// Records a failure seen from outside a model thread (the driver's
    /// final audit) and returns the run's failure (the first one recorded).
    pub fn fail_from(&self, cpu: u32, kind: FailureKind, detail: String) -> Failure {
        let mut f = self.failure.lock();
        let first = f
            .get_or_insert_with(|| Failure {
                kind,
                seed: self.cfg.seed,
                scenario: self.cfg.variant.scenario_id(),
                variant: self.cfg.variant,
                cpu,
                ms: self.elapsed_ns() / 1_000_000,
                detail,
                traces: self.trace.snapshot(),
            })
            .clone();
        self.stop.store(true, Ordering::SeqCst);
        first
    }

    /// Stops the run without a failure (time is up).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Asks every thread to finish its current operation and return (a
    /// clean end: afterwards the machine is quiescent and can be audited).
    pub fn request_finish(&self) {
        self.finish.store(true, Ordering::SeqCst);
    }

    /// True once a clean end was requested.
    pub fn finishing(&self) -> bool {
        self.finish.load(Ordering::Relaxed)
    }

    /// True once the run is over.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The recorded failure, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.failure.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_encoding_roundtrips() {
        for w in [
            Wait::Running,
            Wait::ObjectLock(7),
            Wait::MapRead(1),
            Wait::MapWrite(2),
            Wait::Pmap(3),
            Wait::Busy {
                obj: 9,
                pindex: 1234,
            },
            Wait::Pbuf,
            Wait::Pip(5),
            Wait::FreePages,
            Wait::Internal,
            Wait::Script(Site::SplitBusySleep),
        ] {
            assert_eq!(Wait::decode(w.encode()), w);
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod wait_tests {
    use core::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::host::HostPlatform;
    use crate::scenarios::d15293::BASELINE;

    /// The host platform, counting the wait loop's spins and idles.
    struct Counting {
        inner: HostPlatform,
        pauses: AtomicU32,
        idles: AtomicU32,
    }

    impl Platform for Counting {
        fn now_ns(&self) -> u64 {
            self.inner.now_ns()
        }
        fn pause(&self) {
            self.pauses.fetch_add(1, Ordering::Relaxed);
        }
        fn idle(&self) {
            self.idles.fetch_add(1, Ordering::Relaxed);
        }
        fn delay(&self, ns: u64) {
            self.inner.delay(ns)
        }
        fn swap_pages(&self) -> u64 {
            self.inner.swap_pages()
        }
        fn swap_read(&self, blk: u64, buf: &mut [u8]) -> Result<(), crate::platform::IoError> {
            self.inner.swap_read(blk, buf)
        }
        fn swap_write(&self, blk: u64, buf: &[u8]) -> Result<(), crate::platform::IoError> {
            self.inner.swap_write(blk, buf)
        }
    }

    fn vm() -> Vm<Counting> {
        Vm::new(
            Counting {
                inner: HostPlatform::new(64),
                pauses: AtomicU32::new(0),
                idles: AtomicU32::new(0),
            },
            VmConfig::small(BASELINE, 1, 1),
        )
    }

    /// A short wait only spins; a long one spins first, then gives the CPU
    /// away ([`Platform::idle`]) on every later turn, never doing both in
    /// one turn.
    #[test]
    fn a_wait_spins_first_then_idles() {
        let td = Td::new(0, 1);
        let short = vm();
        let mut tries = 0;
        short
            .wait_until(&td, Wait::Internal, || {
                tries += 1;
                tries > 3
            })
            .unwrap();
        assert_eq!(short.p.pauses.load(Ordering::Relaxed), 3);
        assert_eq!(short.p.idles.load(Ordering::Relaxed), 0);

        let long = vm();
        let until = long.p.now_ns() + 4 * SPIN_NS;
        let mut turns = 0u32;
        long.wait_until(&td, Wait::Internal, || {
            turns += 1;
            long.p.now_ns() >= until
        })
        .unwrap();
        let (pauses, idles) = (
            long.p.pauses.load(Ordering::Relaxed),
            long.p.idles.load(Ordering::Relaxed),
        );
        assert!(pauses >= SPINS_BEFORE_IDLE, "{pauses} spins");
        assert!(idles > 0, "never idled in a wait of {} ns", 4 * SPIN_NS);
        assert_eq!(pauses + idles, turns - 1, "one pause or idle per retry");
    }
}
