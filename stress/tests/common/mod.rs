//! Helpers for host tests: a scripted machine, threads with a watchdog.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use std::sync::atomic::AtomicBool as Flag;
use stress::failure::FailureKind;
use stress::fork::Region;
use stress::host::{HostPlatform, Script};
use stress::run::Watchdog;
use stress::vm::{Res, Td, Vm, VmConfig};
use stress::{Platform, Variant};

pub type HostVm = Vm<HostPlatform>;

/// Polls `f` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    f()
}

/// A small scripted machine: 4 CPUs, one pbuf, no injected delays.
pub fn machine(variant: Variant, frames: usize) -> (HostVm, Arc<Script>) {
    let script = Script::new();
    let cfg = VmConfig {
        frames,
        ..VmConfig::small(variant, 0x15293, 4)
    };
    (
        Vm::new(HostPlatform::scripted(1024, script.clone()), cfg),
        script,
    )
}

/// One anonymous region of `pages` pages at `start`.
pub fn region(start: u64, pages: u64) -> Vec<Region> {
    vec![Region {
        start,
        pages,
        clips: vec![],
    }]
}

/// A job for one CPU.
pub type Job<'a> = Box<dyn FnOnce(&mut Td) -> Res<()> + Send + 'a>;

/// A flag a job waits for before it starts (set by the conductor); gives up
/// with `Stop` when the run was stopped.
pub fn wait_go(vm: &HostVm, go: &AtomicBool) -> Res<()> {
    while !go.load(Ordering::SeqCst) {
        vm.check()?;
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}

/// Runs `jobs` on their CPUs, then `conductor` on the test thread with a liveness watchdog (`stall`): returns when
/// every job returned, or when the watchdog declared a hang (recorded on the
/// VM as a `Hang` failure; the jobs then unwind with `Stop`).
pub fn run_cpus<'a>(
    vm: &'a HostVm,
    stall: Duration,
    jobs: Vec<(usize, Job<'a>)>,
    conductor: impl FnOnce(),
) {
    let n = vm.cfg.ncpus;
    let done: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(true)).collect();
    for (cpu, _) in &jobs {
        done[*cpu].store(false, Ordering::SeqCst);
    }
    let mut panicked = None;
    std::thread::scope(|s| {
        for (cpu, job) in jobs {
            let done = &done;
            s.spawn(move || {
                let mut td = Td::new(cpu, 7);
                let _ = job(&mut td);
                vm.beat(&td);
                done[cpu].store(true, Ordering::SeqCst);
            });
        }
        // A conductor that gives up must not leave jobs blocked forever.
        let conducted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(conductor));
        if let Err(p) = conducted {
            vm.request_stop();
            if let Some(s) = vm.p.script() {
                s.release_all();
            }
            panicked = Some(p);
        }
        let dog = Watchdog::new(n, stall.as_nanos() as u64, vm.p.now_ns());
        loop {
            for (c, d) in done.iter().enumerate() {
                if d.load(Ordering::SeqCst) {
                    dog.mark_done(c);
                }
            }
            if dog.all_done() {
                break;
            }
            if dog.observe(vm, vm.p.now_ns()) {
                // The jobs see Stop and return; the hang is recorded on the
                // VM for the test to see.
                if let Some(h) = dog.report(Vec::new()) {
                    vm.fail_from(0, FailureKind::Hang, h.summary());
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    if let Some(p) = panicked {
        std::panic::resume_unwind(p);
    }
}
