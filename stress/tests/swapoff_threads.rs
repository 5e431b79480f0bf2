//! The swapoff scenario on real threads (4 CPUs: fork loop, page daemon,
//! faults, swapoff): the unpatched code is caught by the use-after-free
//! oracle, and r358024 runs a fixed budget clean with the race window open,
//! devices emptied again and again, its books balanced.

use std::time::Duration;

use stress::failure::FailureKind;
use stress::host::run_stress;
use stress::scenarios::swapoff;

#[test]
fn pre_r358024_reads_a_freed_block() {
    // Real threads: whether one seed's run meets the window depends on the
    // host's scheduling (a loaded 2-core machine may not), so several seeds
    // get their chance; the scripted and PCT tests pin the interleaving.
    let (r, f) = (0..12u64)
        .find_map(|seed| {
            let r = run_stress(
                swapoff::PRE_R358024,
                seed,
                4,
                Some(400),
                Duration::from_secs(20),
            );
            let f = r.failure.clone()?;
            Some((r, f))
        })
        .expect("pre-r358024 ran clean on 12 seeds");
    assert_eq!(f.kind, FailureKind::SwapUseAfterFree, "{f}");
    assert!(f.detail.contains("changed while swapoff slept"), "{f}");
    // Caught inside a swapoff (a device had blocks to empty); a run caught
    // during its first swapoff has completed none yet.
    assert!(r.stats.swapoff_blocks > 0, "{:?}", r.stats);
}

#[test]
fn r358024_stays_clean_with_the_window_open() {
    for v in [swapoff::R358024, swapoff::D45668] {
        let r = run_stress(v, 1, 4, Some(6000), Duration::from_secs(20));
        assert_eq!(r.failure, None, "{v}: {}", r.failure.as_ref().unwrap());
        assert!(r.hang.is_none(), "{v}: {:?}", r.hang.map(|h| h.summary()));
        let s = r.stats;
        assert!(s.window_hits > 0 && s.swapoffs > 2, "{v}: {s:?}");
        assert!(s.swapoff_pageins > 0 && s.forks > 0, "{v}: {s:?}");
        let (_, after) = r.census.expect("census");
        assert_eq!((after.swap_used, after.objects), (0, 0), "{v}");
    }
}
