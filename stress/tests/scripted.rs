//! Scripted interleavings: the race of review D15293 replayed step by step
//! ("The race", steps 1–4, in DESIGN.md), once per variant, plus kib's
//! objection to `swap-clip` and the map-timestamp re-check. Every outcome
//! below is measured by the model's oracles while the script runs.

mod common;

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use stress::Variant;
use stress::failure::{Failure, FailureKind};
use stress::platform::Site;
use stress::scenarios::d15293;
use stress::stats::Stats;
use stress::vm::{Td, Wait};

const BASE: u64 = 0x100;
/// The faulting index (CPU A's page `p`).
const P: u64 = 10;
const T: Duration = Duration::from_secs(10);
const STALL: Duration = Duration::from_secs(3);

/// What a script run measured.
#[derive(Debug)]
struct Outcome {
    failure: Option<Failure>,
    stats: Stats,
    /// Census after the script, after the checks, after teardown (when no failure).
    conservation: Option<Result<(), String>>,
}

impl Outcome {
    fn kind(&self) -> Option<FailureKind> {
        self.failure.as_ref().map(|f| f.kind)
    }
}

/// Builds the state of step 0: parent image, one 16-page swap-backed object
/// `O`; pages 0–9 resident and clean (with swap copies), 10–11 on swap only,
/// 12–15 resident and dirty (version 2, no swap copy).
fn step0(vm: &HostVm, td: &mut Td) -> u32 {
    let parent = vm.create_image(td, &region(BASE, 16)).unwrap().unwrap();
    for i in 0..16 {
        assert!(vm.store(td, parent, BASE + i).unwrap());
    }
    assert_eq!(
        vm.evict(td, parent, BASE, true).unwrap(),
        16,
        "one 16-page cluster to swap"
    );
    assert!(
        vm.load(td, parent, BASE).unwrap(),
        "swap-in with read-ahead"
    );
    assert_eq!(vm.evict(td, parent, BASE + P, false).unwrap(), 1);
    assert_eq!(vm.evict(td, parent, BASE + P + 1, false).unwrap(), 1);
    for i in 12..16 {
        assert!(vm.store(td, parent, BASE + i).unwrap());
    }
    let (o, _) = vm.entry_object(td, parent, BASE).unwrap().unwrap();
    let (resident, has) = vm
        .peek_object(td, &o, |g| {
            (g.pages.keys().copied().collect::<Vec<_>>(), g.haspage(P))
        })
        .unwrap();
    assert_eq!(resident, (0..10).chain(12..16).collect::<Vec<u64>>());
    assert_eq!(has, Some((10, 1)), "contiguous swap behind and ahead of p");
    parent
}

/// After a clean script: every image checks every page, then teardown, and
/// conservation holds at each step.
fn audit(vm: &HostVm, td: &mut Td, images: &[u32]) -> Result<(), String> {
    vm.check_conservation()?;
    for &img in images {
        for i in 0..16 {
            if vm.load(td, img, BASE + i).is_err() {
                return Err(format!(
                    "image {img} vpn {}: {}",
                    BASE + i,
                    vm.failure().unwrap()
                ));
            }
        }
    }
    vm.check_conservation()?;
    vm.teardown(td)
        .map_err(|_| "teardown stopped".to_string())?;
    let c = vm.check_conservation()?;
    if c.free_frames != c.frames || c.swap_used != 0 || c.objects != 0 {
        return Err(format!("after teardown: {c:?}"));
    }
    Ok(())
}

/// The race, steps 1–4:
/// 1. CPU A faults at `p` in `O`, busies it, drops the map lock, and in
///    getpages drops `O`'s lock to take a pbuf: the pool is empty, it sleeps.
/// 2. CPU B forks: split moves the resident pages below `p` into `N`, meets
///    busy `p`, sleeps.
/// 3. The pbuf comes back: A relocks `O`, clips and allocates read-behind, reads.
/// 4. B wakes and restarts from `find_least(start)`.
fn fork_race(variant: Variant) -> Outcome {
    let (vm, _script) = machine(variant, 96);
    let mut td = Td::new(0, 1);
    let parent = step0(&vm, &mut td);
    let pbufs = vm.pbuf_take_all();
    let child = Mutex::new(None);
    let go_b = Flag::new(false);
    run_cpus(
        &vm,
        STALL,
        vec![
            (
                1,
                Box::new(|td: &mut Td| vm.load(td, parent, BASE + P).map(drop)),
            ),
            (
                2,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_b)?;
                    *child.lock().unwrap() = vm.vmspace_fork(td, parent)?;
                    Ok(())
                }),
            ),
        ],
        || {
            // Step 1: A sleeps in getpbuf.
            assert!(
                eventually(T, || vm.wait_of(1) == Wait::Pbuf),
                "A never slept for a pbuf"
            );
            // Step 2: B forks and sleeps on busy p (or, split-pipwait, on pip).
            go_b.store(true, Ordering::SeqCst);
            assert!(
                eventually(T, || matches!(
                    vm.wait_of(2),
                    Wait::Busy { pindex: 10, .. } | Wait::Pip(_)
                )),
                "B never blocked on p: {:?}",
                vm.waits()
            );
            // Step 3: the pbuf comes back.
            vm.pbuf_return(pbufs);
        },
    );
    let failure = vm.failure();
    let conservation = match (&failure, *child.lock().unwrap()) {
        (None, Some(c)) => Some(audit(&vm, &mut td, &[parent, c])),
        (None, None) => Some(Err("fork made no child".into())),
        _ => None,
    };
    Outcome {
        failure: vm.failure(),
        stats: vm.counters.snapshot(),
        conservation,
    }
}

fn clean(o: &Outcome) {
    assert_eq!(o.failure, None, "{:#?}", o.failure);
    assert_eq!(o.conservation, Some(Ok(())));
}

#[test]
fn baseline_repopulates() {
    let o = fork_race(d15293::BASELINE);
    assert_eq!(o.kind(), Some(FailureKind::Repopulated), "{o:#?}");
    let f = o.failure.unwrap();
    assert!(f.detail.contains("pindex 0"), "{}", f.detail);
    assert_eq!(f.cpu, 2, "split (CPU B) catches it");
    assert_eq!(o.stats.window_hits, 1);
    assert_eq!(o.stats.wasted, 10, "A re-read the 10 pages split had moved");
    // The interleaving is in the traces: A's read-behind after B's sleep.
    let events = stress::trace::interleave(&f.traces);
    let sleep = events
        .iter()
        .position(|(c, e)| *c == 2 && e.ev == stress::trace::Ev::SplitBusySleep)
        .unwrap();
    let alloc = events
        .iter()
        .position(|(c, e)| *c == 1 && e.ev == stress::trace::Ev::AllocBehind)
        .unwrap();
    assert!(sleep < alloc, "read-behind allocated after split slept");
}

#[test]
fn split_skip_discards() {
    let o = fork_race(d15293::SPLIT_SKIP);
    clean(&o);
    assert_eq!(o.stats.discarded, 10);
    assert_eq!(o.stats.wasted, 10);
    assert_eq!(o.stats.window_hits, 1);
}

#[test]
fn split_skip_inverted_is_caught() {
    let o = fork_race(d15293::SPLIT_SKIP_INVERTED);
    // It frees the pages the new object does not hold — including the dirty
    // ones whose only copy was in memory — and a later load sees zeros.
    assert_eq!(o.kind(), Some(FailureKind::StaleData), "{o:#?}");
    assert!(o.stats.discarded >= 10);
}

#[test]
fn split_restart_leaks() {
    let o = fork_race(d15293::SPLIT_RESTART);
    clean(&o);
    assert_eq!(o.stats.leaked, 10, "bogus pages left behind in O");
    assert_eq!(o.stats.discarded, 0);
    assert_eq!(o.stats.wasted, 10);
}

#[test]
fn swap_clip_is_clean_here() {
    let o = fork_race(d15293::SWAP_CLIP);
    clean(&o);
    assert_eq!(o.stats.wasted, 0);
    assert_eq!(o.stats.window_hits, 1);
}

#[test]
fn swap_prealloc_is_clean() {
    let o = fork_race(d15293::SWAP_PREALLOC);
    clean(&o);
    assert_eq!(o.stats.wasted, 0);
    assert_eq!(o.stats.discarded + o.stats.leaked, 0);
    assert_eq!(o.stats.window_hits, 1);
}

/// alc predicted a deadlock (fault keeps pip until it completes; fork keeps
/// the map lock). The model measures what FreeBSD's vm_fault really does: it
/// only *tries* the map lock after the pager and, failing, drops its pip
/// before retrying — so split's pip wait ends and nothing hangs.
#[test]
fn split_pipwait_waits_without_deadlock() {
    let o = fork_race(d15293::SPLIT_PIPWAIT);
    clean(&o);
    assert_eq!(o.stats.split_pip_waits, 1, "split did wait for pip");
    assert_eq!(o.stats.wasted, 0);
    assert_eq!(
        o.stats.window_hits, 1,
        "split waited while A's read-behind was in flight"
    );
}

#[test]
fn no_timestamp_recheck_keeps_the_pager_race() {
    // The variant keeps the baseline pager: the fork race repopulates.
    let o = fork_race(d15293::NO_TIMESTAMP_RECHECK);
    assert_eq!(o.kind(), Some(FailureKind::Repopulated), "{o:#?}");
}

/// The map changes under an in-flight fault without blocking on its busy
/// page (`munmap` + `mmap` of the range): only the timestamp re-check stops
/// the fault from entering the old object's page. With `keep`, a child
/// forked beforehand keeps the old object alive.
fn remap_race(variant: Variant, keep: bool) -> Outcome {
    let (vm, _script) = machine(variant, 96);
    let mut td = Td::new(0, 1);
    let parent = step0(&vm, &mut td);
    let mut images = vec![parent];
    if keep {
        images.push(vm.vmspace_fork(&mut td, parent).unwrap().unwrap());
    }
    let pbufs = vm.pbuf_take_all();
    let (go_b, b_done) = (Flag::new(false), Flag::new(false));
    run_cpus(
        &vm,
        STALL,
        vec![
            (
                1,
                Box::new(|td: &mut Td| vm.load(td, parent, BASE + P).map(drop)),
            ),
            (
                2,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_b)?;
                    let r = vm.map_remap(td, parent, BASE).map(drop);
                    b_done.store(true, Ordering::SeqCst);
                    r
                }),
            ),
        ],
        || {
            assert!(eventually(T, || vm.wait_of(1) == Wait::Pbuf));
            go_b.store(true, Ordering::SeqCst);
            assert!(eventually(T, || b_done.load(Ordering::SeqCst)));
            vm.pbuf_return(pbufs);
        },
    );
    let failure = vm.failure();
    let conservation = failure.is_none().then(|| audit(&vm, &mut td, &images));
    Outcome {
        failure: vm.failure(),
        stats: vm.counters.snapshot(),
        conservation,
    }
}

#[test]
fn timestamp_recheck_retries_after_remap() {
    for v in [d15293::BASELINE, d15293::SWAP_PREALLOC] {
        for keep in [false, true] {
            let o = remap_race(v, keep);
            clean(&o);
            assert_eq!(
                o.stats.fault_timestamp_retries, 1,
                "{v}: the fault saw the map change"
            );
        }
    }
}

#[test]
fn no_timestamp_recheck_exposes_stale_data() {
    // The old object lives on (a child maps it): the fault enters its page
    // where the image now has a fresh zero-filled mapping.
    let o = remap_race(d15293::NO_TIMESTAMP_RECHECK, true);
    assert_eq!(o.kind(), Some(FailureKind::StaleData), "{o:#?}");
    let f = o.failure.unwrap();
    assert!(
        f.detail.contains("expected zeros, found lineage"),
        "{}",
        f.detail
    );
    // Nobody else holds the old object: it dies when the fault drops its
    // reference, with the stale page still mapped.
    let o = remap_race(d15293::NO_TIMESTAMP_RECHECK, false);
    assert_eq!(o.kind(), Some(FailureKind::FreedMapped), "{o:#?}");
}

/// kib's objection to swap-clip: while A sleeps for its pbuf with read-behind
/// clipped to the predecessor it saw, another fault (C) fills the gap; fork
/// then moves those pages and A re-creates them. Returns the outcome and
/// how many read-behind pages A was left with after clipping.
fn kib_objection(variant: Variant) -> Outcome {
    let (vm, script) = machine(variant, 96);
    let mut td = Td::new(0, 1);
    let parent = step0(&vm, &mut td);
    // Only 0–4 resident below p: the gap 5–9 is on swap.
    for i in 5..10 {
        assert_eq!(vm.evict(&mut td, parent, BASE + i, false).unwrap(), 1);
    }
    script.hold(1, Site::GetpagesPbuf);
    let (go_b, go_c, c_done) = (Flag::new(false), Flag::new(false), Flag::new(false));
    let child = Mutex::new(None);
    run_cpus(
        &vm,
        STALL,
        vec![
            (
                1,
                Box::new(|td: &mut Td| vm.load(td, parent, BASE + P).map(drop)),
            ),
            (
                3,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_c)?;
                    let r = vm.load(td, parent, BASE + 7).map(drop);
                    c_done.store(true, Ordering::SeqCst);
                    r
                }),
            ),
            (
                2,
                Box::new(|td: &mut Td| {
                    wait_go(&vm, &go_b)?;
                    *child.lock().unwrap() = vm.vmspace_fork(td, parent)?;
                    Ok(())
                }),
            ),
        ],
        || {
            // A waits for its pbuf (held at the site, before getpbuf).
            assert!(script.wait_parked(1, Site::GetpagesPbuf, T));
            // C faults in the gap: it completes (5–9 resident again), or —
            // where A already owns the gap — sleeps on A's busy page.
            go_c.store(true, Ordering::SeqCst);
            assert!(eventually(T, || c_done.load(Ordering::SeqCst)
                || matches!(vm.wait_of(3), Wait::Busy { .. })));
            // B forks: split moves what is resident below the first busy
            // page and sleeps on it.
            go_b.store(true, Ordering::SeqCst);
            assert!(
                eventually(T, || matches!(vm.wait_of(2), Wait::Busy { .. })),
                "{:?}",
                vm.waits()
            );
            script.release(1, Site::GetpagesPbuf);
        },
    );
    let failure = vm.failure();
    let conservation = match (&failure, *child.lock().unwrap()) {
        (None, Some(c)) => Some(audit(&vm, &mut td, &[parent, c])),
        _ => None,
    };
    Outcome {
        failure: vm.failure(),
        stats: vm.counters.snapshot(),
        conservation,
    }
}

#[test]
fn kib_objection_to_swap_clip_holds() {
    // swap-clip clipped A's read-behind to the predecessor it saw (page 4),
    // i.e. 5 pages; C filled them; split moved them; A re-created them.
    let o = kib_objection(d15293::SWAP_CLIP);
    assert_eq!(o.kind(), Some(FailureKind::Repopulated), "{o:#?}");
    assert_eq!(o.stats.wasted, 5);
    // The committed fix survives the same script; baseline does not.
    clean(&kib_objection(d15293::SWAP_PREALLOC));
    assert_eq!(
        kib_objection(d15293::BASELINE).kind(),
        Some(FailureKind::Repopulated)
    );
}
