//! Scripted interleaving of the collapse scenario's caught race (r357091,
//! D23331): a fault that meets a busy page below the top object leaves its
//! invalid page in the top object; a collapse of the backing object into
//! the top object takes that invalid page for the parent's data, frees the
//! backing page and its swap space — and the retrying fault finds nothing
//! (a lost page, read as zeros). Replayed once per variant; every outcome
//! is the model's oracles'.
//!
//! 0. Parent `P`, 16 pages: 0–9 resident and clean (swap copies), 10–11 on
//!    swap only, 12–15 resident and dirty. `P` forks child `C`; `P` writes
//!    page 15, so its entry gets a top object `T` over the shared `O`.
//! 1. CPU 1 (`P` reads 11) swaps `O`'s page 11 in with read-behind 10 and
//!    is held in its I/O: `O`'s pages 10 and 11 are busy.
//! 2. CPU 2 (`P` reads 10) allocates its page in `T` at 10, walks down to
//!    `O`, meets busy page 10, sleeps on it — before r357091's fault frees
//!    its `T` page first, the early-2020 fault only releases it.
//! 3. CPU 3: `C` exits; `O` has one reference left and collapses into `T`
//!    (D22908: with faults in flight); the scan sleeps on busy page 10.
//! 4. The I/O completes. CPU 2 wakes and is held before it retries; the
//!    scan decides page 10 — then CPU 2 retries.

mod common;

use std::time::Duration;

use common::*;
use stress::Variant;
use stress::failure::{Failure, FailureKind};
use stress::platform::Site;
use stress::scenarios::collapse;
use stress::stats::Stats;
use stress::vm::{Td, Wait};

const BASE: u64 = 0x100;
/// The page CPU 2 faults on (`i`); CPU 1 faults on `i + 1`.
const I: u64 = 10;
const T: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Outcome {
    failure: Option<Failure>,
    stats: Stats,
    /// Every page of the parent read back, teardown, conservation (clean runs).
    audit: Option<Result<(), String>>,
}

/// Step 0. Returns (parent, child).
fn step0(vm: &HostVm, td: &mut Td) -> (u32, u32) {
    let parent = vm.create_image(td, &region(BASE, 16)).unwrap().unwrap();
    for i in 0..16 {
        assert!(vm.store(td, parent, BASE + i).unwrap());
    }
    assert_eq!(vm.evict(td, parent, BASE, true).unwrap(), 16);
    assert!(
        vm.load(td, parent, BASE).unwrap(),
        "swap-in with read-ahead"
    );
    assert_eq!(vm.evict(td, parent, BASE + I, false).unwrap(), 1);
    assert_eq!(vm.evict(td, parent, BASE + I + 1, false).unwrap(), 1);
    for i in 12..16 {
        assert!(vm.store(td, parent, BASE + i).unwrap());
    }
    let child = vm.vmspace_fork(td, parent).unwrap().unwrap();
    let (o, _) = vm.entry_object(td, parent, BASE).unwrap().unwrap();
    assert!(vm.store(td, parent, BASE + 15).unwrap(), "parent's COW");
    let (t, _) = vm.entry_object(td, parent, BASE).unwrap().unwrap();
    let (backing, resident, has) = vm
        .peek_object(td, &t, |g| {
            (
                g.backing.as_ref().map(|b| b.id),
                g.pages.keys().copied().collect::<Vec<_>>(),
                g.swblk.len(),
            )
        })
        .unwrap();
    assert_eq!((backing, resident, has), (Some(o.id), vec![15], 0));
    let (refs, on_swap, res) = vm
        .peek_object(td, &o, |g| {
            (
                g.ref_count,
                g.swblk.contains_key(&I) && g.swblk.contains_key(&(I + 1)),
                g.pages.contains_key(&I) || g.pages.contains_key(&(I + 1)),
            )
        })
        .unwrap();
    assert_eq!((refs, on_swap, res), (2, true, false), "O: T and C");
    (parent, child)
}

fn retry_race(variant: Variant) -> Outcome {
    let (vm, script) = machine(variant, 96);
    let mut td = Td::new(0, 1);
    let (parent, child) = step0(&vm, &mut td);
    script.hold(1, Site::GetpagesIo);
    script.hold(2, Site::FaultBusyRetry);
    let go_a = Flag::new(false);
    let go_exit = Flag::new(false);
    run_cpus(
        &vm,
        STALL,
        vec![
            (
                1,
                Box::new(|td: &mut Td| vm.load(td, parent, BASE + I + 1).map(drop)),
            ),
            (
                2,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_a)?;
                    vm.load(td, parent, BASE + I).map(drop)
                }),
            ),
            (
                3,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_exit)?;
                    vm.vmspace_exit(td, child)
                }),
            ),
        ],
        || {
            // Step 1.
            assert!(script.wait_parked(1, Site::GetpagesIo, T), "no swap-in");
            // Step 2.
            go_a.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(
                eventually(
                    T,
                    || matches!(vm.wait_of(2), Wait::Busy { pindex, .. } if pindex as u64 == I)
                ),
                "the fault never slept on O's page: {:?}",
                vm.waits()
            );
            // Step 3.
            go_exit.store(true, std::sync::atomic::Ordering::SeqCst);
            assert!(
                eventually(
                    T,
                    || matches!(vm.wait_of(3), Wait::Busy { pindex, .. } if pindex as u64 == I)
                ),
                "the collapse never slept on O's page: {:?}",
                vm.waits()
            );
            // Step 4: the I/O completes; the fault is held before it
            // retries until the collapse is over.
            script.release(1, Site::GetpagesIo);
            assert!(
                script.wait_parked(2, Site::FaultBusyRetry, T),
                "the fault never woke"
            );
            assert!(
                eventually(T, || vm.counters.snapshot().collapses >= 1
                    || vm.failure().is_some()),
                "no collapse: {:?}",
                vm.waits()
            );
            script.release(2, Site::FaultBusyRetry);
        },
    );
    let failure = vm.failure();
    let audit = failure.is_none().then(|| {
        for i in 0..16 {
            if vm.load(&mut td, parent, BASE + i).is_err() {
                return Err(format!("vpn {}: {:?}", BASE + i, vm.failure()));
            }
        }
        vm.check_conservation()?;
        vm.teardown(&mut td)
            .map_err(|_| "teardown stopped".to_string())?;
        let c = vm.check_conservation()?;
        if c.free_frames != c.frames || c.swap_used != 0 || c.objects != 0 {
            return Err(format!("after teardown: {c:?}"));
        }
        Ok(())
    });
    Outcome {
        failure: vm.failure(),
        stats: vm.counters.snapshot(),
        audit,
    }
}

#[test]
fn r357091_before_loses_the_page() {
    let o = retry_race(collapse::R357091_BEFORE);
    let f = o.failure.as_ref().expect("caught");
    assert_eq!(f.kind, FailureKind::StaleData, "{f}");
    assert_eq!(f.cpu, 2, "the retrying fault reads the lost page: {f}");
    assert!(f.detail.contains("found zeros"), "{}", f.detail);
    assert_eq!(o.stats.collapses, 1);
    assert!(o.stats.window_hits >= 1, "{:?}", o.stats);
}

#[test]
fn r357091_frees_the_invalid_page_instead() {
    let o = retry_race(collapse::R357091);
    assert_eq!(o.failure, None, "{:#?}", o.failure);
    assert_eq!(o.audit, Some(Ok(())));
    assert_eq!(o.stats.collapses, 1);
    assert!(o.stats.window_hits >= 1, "{:?}", o.stats);
}

#[test]
fn d22908_fault_frees_its_page_and_nothing_is_lost() {
    let o = retry_race(collapse::D22908);
    assert_eq!(o.failure, None, "{:#?}", o.failure);
    assert_eq!(o.audit, Some(Ok(())));
    assert_eq!(o.stats.collapses, 1);
}
