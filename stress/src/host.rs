//! Host side (feature `std`): a [`Platform`] over std threads and an
//! in-memory swap disk, scripted gates for step-by-step interleavings, and a
//! runner that drives the workload on real threads with a watchdog.

use std::boxed::Box;
use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::failure::Failure;
use crate::oracle::{Census, Watchdog};
use crate::platform::{IoError, PAGE_SIZE, Platform, Site};
use crate::stats::Stats;
use crate::variant::Variant;
use crate::vm::{Td, Vm};
use crate::workload::{Budget, Role, Workload, roles};

/// A swap device in memory; unwritten blocks read as zeros.
pub struct MemDisk {
    blocks: Vec<Mutex<Option<Box<[u8; PAGE_SIZE]>>>>,
}

impl MemDisk {
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
    pub failure: Option<Failure>,
    pub stats: Stats,
    /// Conservation after the clean end and after tearing everything down
    /// (only checked when no failure stopped the run).
    pub census: Option<Result<(Census, Census), std::string::String>>,
    pub elapsed: Duration,
}

/// Runs the stress workload of `seed` for `variant` on `ncpus` std threads
/// until the fork loop did `budget` iterations, with a watchdog declaring a hang after
/// `stall`. On a clean end it audits conservation, tears down, audits again.
pub fn run_stress(
    variant: Variant,
    seed: u64,
    ncpus: usize,
    budget: Budget,
    stall: Duration,
) -> HostRun {
    let w = Workload::for_seed(seed);
    let vm = Vm::new(HostPlatform::new(4096), w.vm_config(variant, ncpus));
    run_on(&vm, &w, ncpus, budget, stall)
}

/// Runs a workload on an existing machine (see [`run_stress`]).
pub fn run_on(
    vm: &Vm<HostPlatform>,
    w: &Workload,
    ncpus: usize,
    budget: Budget,
    stall: Duration,
) -> HostRun {
    let t0 = Instant::now();
    let mut td0 = Td::new(0, w.seed);
    let parents = match vm.setup(&mut td0, w) {
        Ok(p) => p,
        Err(_) => {
            return HostRun {
                failure: vm.failure(),
                stats: vm.counters.snapshot(),
                census: None,
                elapsed: t0.elapsed(),
            };
        }
    };
    let done: Vec<std::sync::atomic::AtomicBool> = (0..ncpus)
        .map(|_| std::sync::atomic::AtomicBool::new(false))
        .collect();
    let roles = roles(ncpus);
    std::thread::scope(|s| {
        for (cpu, &role) in roles.iter().enumerate() {
            let (vm, w, parents, done) = (&vm, &w, &parents, &done);
            // The budget counts fork-loop iterations; faults and the page
            // daemon run until the fork loop is done.
            let budget = if matches!(role, Role::Pageout | Role::Fault) {
                None
            } else {
                budget
            };
            s.spawn(move || {
                let mut td = Td::new(cpu, w.seed);
                let _ = vm.run_role(&mut td, w, parents, role, budget);
                done[cpu].store(true, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let mut dog = Watchdog::new(ncpus, stall.as_nanos() as u64, vm.p.now_ns());
        loop {
            let d: Vec<bool> = done
                .iter()
                .map(|d| d.load(std::sync::atomic::Ordering::SeqCst))
                .collect();
            if d.iter().all(|x| *x) {
                break;
            }
            if d.iter()
                .zip(&roles)
                .all(|(done, r)| *done || matches!(r, Role::Pageout | Role::Fault))
            {
                vm.request_finish();
            }
            if dog.observe(vm, &d, vm.p.now_ns()).is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let failure = vm.failure();
    let census = if failure.is_none() {
        let before = vm.check_conservation();
        let mut td = Td::new(0, w.seed);
        let after = match vm.teardown(&mut td) {
            Ok(()) => vm.check_conservation(),
            Err(_) => Err("teardown stopped".into()),
        };
        Some(before.and_then(|b| after.map(|a| (b, a))))
    } else {
        None
    };
    HostRun {
        failure: vm.failure(),
        stats: vm.counters.snapshot(),
        census,
        elapsed: t0.elapsed(),
    }
}
