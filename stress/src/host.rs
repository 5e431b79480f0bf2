//! Host side (feature `std`): a [`Platform`] over std threads and an
//! in-memory swap disk, scripted gates for step-by-step interleavings, and a
//! runner that drives a scenario's workload on real threads through the
//! shared run driver.

use std::boxed::Box;
use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::failure::Failure;
use crate::oracle::Census;
use crate::platform::{IoError, PAGE_SIZE, Platform, Site};
use crate::run::{Driver, End, HangReport};
use crate::stats::Stats;
use crate::variant::Variant;

/// A leading role's iteration budget (None: until the run is stopped).
pub type Budget = Option<u64>;

/// A swap device in memory; unwritten blocks read as zeros.
pub struct MemDisk {
    blocks: Vec<Mutex<Option<Box<[u8; PAGE_SIZE]>>>>,
}

impl MemDisk {
    /// A disk of `pages` pages, all reading as zeros.
    pub fn new(pages: u64) -> Self {
        MemDisk {
            blocks: (0..pages).map(|_| Mutex::new(None)).collect(),
        }
    }
}

/// Scripted gates: a test holds a CPU at a site and waits for CPUs to reach
/// sites, to replay an interleaving step by step.
#[derive(Default)]
pub struct Script {
    state: Mutex<ScriptState>,
    cv: Condvar,
}

#[derive(Default)]
struct ScriptState {
    holds: BTreeSet<(usize, Site)>,
    parked: BTreeSet<(usize, Site)>,
}

impl Script {
    /// A script with no holds.
    pub fn new() -> Arc<Self> {
        Arc::new(Script::default())
    }

    /// The next time `cpu` reaches `site`, it stops there until released.
    pub fn hold(&self, cpu: usize, site: Site) {
        self.state.lock().unwrap().holds.insert((cpu, site));
    }

    /// Lets `cpu` go on from `site`.
    pub fn release(&self, cpu: usize, site: Site) {
        self.state.lock().unwrap().holds.remove(&(cpu, site));
        self.cv.notify_all();
    }

    /// Releases every hold (a test that gives up must not leave threads parked).
    pub fn release_all(&self) {
        self.state.lock().unwrap().holds.clear();
        self.cv.notify_all();
    }

    /// Waits until `cpu` is stopped at `site`.
    pub fn wait_parked(&self, cpu: usize, site: Site, timeout: Duration) -> bool {
        let g = self.state.lock().unwrap();
        let (_g, r) = self
            .cv
            .wait_timeout_while(g, timeout, |s| !s.parked.contains(&(cpu, site)))
            .unwrap();
        !r.timed_out()
    }

    fn gate(&self, cpu: usize, site: Site) {
        let mut s = self.state.lock().unwrap();
        while s.holds.contains(&(cpu, site)) {
            s.parked.insert((cpu, site));
            self.cv.notify_all();
            s = self.cv.wait(s).unwrap();
        }
        s.parked.remove(&(cpu, site));
    }
}

/// The host platform.
pub struct HostPlatform {
    start: Instant,
    disk: MemDisk,
    script: Option<Arc<Script>>,
}

impl HostPlatform {
    /// A platform with a swap disk of `pages` pages.
    pub fn new(pages: u64) -> Self {
        HostPlatform {
            start: Instant::now(),
            disk: MemDisk::new(pages),
            script: None,
        }
    }

    /// The scripted gates, if any.
    pub fn script(&self) -> Option<&Arc<Script>> {
        self.script.as_ref()
    }

    /// The same, with scripted gates.
    pub fn scripted(pages: u64, script: Arc<Script>) -> Self {
        HostPlatform {
            script: Some(script),
            ..Self::new(pages)
        }
    }
}

impl Platform for HostPlatform {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn pause(&self) {
        std::thread::yield_now();
    }

    fn delay(&self, ns: u64) {
        let until = Instant::now() + Duration::from_nanos(ns);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    fn site(&self, cpu: usize, site: Site) {
        if let Some(s) = &self.script {
            s.gate(cpu, site);
        }
    }

    fn swap_pages(&self) -> u64 {
        self.disk.blocks.len() as u64
    }

    fn swap_read(&self, blk: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let n = buf.len() / PAGE_SIZE;
        let err = IoError {
            blk,
            pages: n as u32,
        };
        for i in 0..n {
            let b = self.disk.blocks.get(blk as usize + i).ok_or(err)?;
            let dst = &mut buf[i * PAGE_SIZE..(i + 1) * PAGE_SIZE];
            match &*b.lock().unwrap() {
                Some(p) => dst.copy_from_slice(&p[..]),
                None => dst.fill(0),
            }
        }
        Ok(())
    }

    fn swap_write(&self, blk: u64, buf: &[u8]) -> Result<(), IoError> {
        let n = buf.len() / PAGE_SIZE;
        let err = IoError {
            blk,
            pages: n as u32,
        };
        for i in 0..n {
            let b = self.disk.blocks.get(blk as usize + i).ok_or(err)?;
            let mut page = Box::new([0u8; PAGE_SIZE]);
            page.copy_from_slice(&buf[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]);
            *b.lock().unwrap() = Some(page);
        }
        Ok(())
    }
}

/// What a host stress run found.
#[derive(Debug)]
pub struct HostRun {
    /// The oracle's failure (during the run or in the final audit).
    pub failure: Option<Failure>,
    /// The watchdog's hang.
    pub hang: Option<HangReport>,
    /// Counters summed over CPUs at the end.
    pub stats: Stats,
    /// Conservation after the clean end and after tearing everything down
    /// (only on a clean end).
    pub census: Option<(Census, Census)>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// Runs the stress workload of `variant`'s scenario for `seed` on `ncpus`
/// std threads until the leading roles did `budget` iterations, with a
/// watchdog declaring a hang after `stall` (the shared [`Driver`]).
pub fn run_stress(
    variant: Variant,
    seed: u64,
    ncpus: usize,
    budget: Budget,
    stall: Duration,
) -> HostRun {
    let d = Driver::new(
        HostPlatform::new(4096),
        variant,
        seed,
        ncpus,
        stall.as_nanos() as u64,
    );
    drive(d, budget)
}

/// Runs a prepared driver on std threads (see [`run_stress`]).
pub fn drive(mut d: Driver<HostPlatform>, budget: Budget) -> HostRun {
    let t0 = Instant::now();
    if d.setup().is_ok() {
        d.start(None, None);
        let ncpus = d.roles().len();
        std::thread::scope(|s| {
            for cpu in 0..ncpus {
                let d = &d;
                s.spawn(move || d.run_cpu(cpu, budget, &mut |_| {}));
            }
            while !d.all_done() {
                d.observe(d.vm.p.now_ns());
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
    let (failure, hang, census) = match d.end() {
        End::Failure(f) => (Some(f), None, None),
        End::Hang(h) => (None, Some(h), None),
        End::Done { before, after } => (None, None, Some((before, after))),
    };
    HostRun {
        failure,
        hang,
        stats: d.vm.counters.snapshot(),
        census,
        elapsed: t0.elapsed(),
    }
}
