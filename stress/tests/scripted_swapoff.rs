//! Scripted interleaving of the swapoff race (r358024), replayed step by
//! step for each variant. Every outcome is measured by the model's oracles.
//!
//! 1. Object `O` (16 pages) has every page on swap device 0, pages 0–3 and
//!    5 resident and clean (their blocks kept).
//! 2. CPU A faults at page 4: getpages busies it and waits for a pbuf.
//! 3. CPU B runs swapoff of device 0: it meets busy page 4 and sleeps with
//!    `O` unlocked (before r358024: holding 0–3 grabbed, the rest of the run
//!    looked up before sleeping).
//! 4. Meanwhile page 7 is written (its swap copy freed), paged out to a new
//!    block on device 1 and freed; page 6 is freed clean (its block kept).
//! 5. A gets its pbuf; B wakes and pages in 6 and 7.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use stress::Variant;
use stress::failure::{Failure, FailureKind};
use stress::platform::Site;
use stress::scenarios::swapoff;
use stress::stats::Stats;
use stress::vm::{Td, Wait};

const BASE: u64 = 0x100;
const T: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(3);

#[derive(Debug)]
struct Outcome {
    failure: Option<Failure>,
    stats: Stats,
    /// Every page reads back its last store, books balance, device 0 empty.
    audit: Option<Result<(), String>>,
}

fn race(variant: Variant) -> Outcome {
    let (vm, script) = machine(variant, 96);
    assert!(vm.set_swap_devices(2));
    let mut td = Td::new(0, 1);
    // Step 1.
    let img = vm
        .create_image(&mut td, &region(BASE, 16))
        .unwrap()
        .unwrap();
    for i in 0..16 {
        assert!(vm.store(&mut td, img, BASE + i).unwrap());
    }
    assert_eq!(vm.evict(&mut td, img, BASE, true).unwrap(), 16);
    assert_eq!(vm.swap_dev_used(0), 16, "one cluster on device 0");
    assert!(
        vm.load(&mut td, img, BASE).unwrap(),
        "read-ahead: all 16 back"
    );
    for i in [4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] {
        assert_eq!(vm.evict(&mut td, img, BASE + i, false).unwrap(), 1);
    }
    assert_eq!(vm.swap_dev_used(0), 16, "clean pages keep their blocks");
    // Step 2: A parks before getpbuf with page 4 busy.
    script.hold(1, Site::GetpagesPbuf);
    let go_b = Flag::new(false);
    run_cpus(
        &vm,
        STALL,
        vec![
            (
                1,
                Box::new(|td: &mut Td| vm.load(td, img, BASE + 4).map(drop)),
            ),
            (
                2,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_b)?;
                    vm.swapoff(td, 0)
                }),
            ),
        ],
        || {
            assert!(script.wait_parked(1, Site::GetpagesPbuf, T));
            // Step 3.
            go_b.store(true, Ordering::SeqCst);
            assert!(
                eventually(T, || matches!(vm.wait_of(2), Wait::Busy { pindex: 4, .. })),
                "B never slept on page 4: {:?}",
                vm.waits()
            );
            // Step 4 (on the test thread).
            let mut tc = Td::new(3, 3);
            assert!(vm.store(&mut tc, img, BASE + 7).unwrap(), "version 2");
            assert_eq!(vm.evict(&mut tc, img, BASE + 7, false).unwrap(), 1);
            assert_eq!(vm.evict(&mut tc, img, BASE + 6, false).unwrap(), 1);
            // Step 5.
            script.release(1, Site::GetpagesPbuf);
        },
    );
    let failure = vm.failure();
    let audit = failure.is_none().then(|| {
        for i in 0..16 {
            if vm.load(&mut td, img, BASE + i).is_err() {
                return Err(format!("vpn {}: {:?}", BASE + i, vm.failure()));
            }
        }
        if vm.swap_dev_used(0) != 0 {
            return Err(format!("device 0 still holds {}", vm.swap_dev_used(0)));
        }
        vm.check_conservation().map(drop)
    });
    Outcome {
        failure,
        stats: vm.counters.snapshot(),
        audit,
    }
}

#[test]
fn pre_r358024_reads_the_block_it_found_before_sleeping() {
    let o = race(swapoff::PRE_R358024);
    let f = o.failure.as_ref().expect("caught");
    assert_eq!(f.kind, FailureKind::SwapUseAfterFree, "{o:#?}");
    assert_eq!(f.cpu, 2, "swapoff (CPU B) catches it");
    assert!(
        f.detail.contains("pindex 7") && f.detail.contains("(free)"),
        "{}",
        f.detail
    );
    assert!(o.stats.window_hits >= 1, "{:?}", o.stats);
}

#[test]
fn r358024_revalidates_and_stays_clean() {
    for v in [
        swapoff::R358024,
        swapoff::R358024_NO_REVALIDATE,
        swapoff::D45668,
    ] {
        let o = race(v);
        assert_eq!(o.failure, None, "{v}: {o:#?}");
        assert_eq!(o.audit, Some(Ok(())), "{v}");
        assert!(o.stats.window_hits >= 1, "{v}: {:?}", o.stats);
        assert_eq!(o.stats.swapoffs, 1, "{v}");
        assert_eq!(o.stats.swapoff_blocks, 16, "{v}");
    }
}
