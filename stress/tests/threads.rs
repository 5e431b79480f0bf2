//! The real workload on real threads (4 CPUs, the default seeded workload):
//! variants that must not corrupt memory run a fixed budget without any
//! oracle firing, and the books balance afterwards.

use std::time::Duration;

use stress::Variant;
use stress::host::run_stress;
use stress::scenarios::d15293;

fn clean_run(v: Variant, seed: u64) {
    let r = run_stress(v, seed, 4, Some(1500), Duration::from_secs(20));
    assert_eq!(
        r.failure,
        None,
        "{v} seed {seed}: {}",
        r.failure.as_ref().unwrap()
    );
    assert_eq!(r.hang, None, "{v} seed {seed}");
    match r.census {
        Some((during, after)) => {
            assert!(during.resident > 0, "{v}: {during:?}");
            assert_eq!(
                (after.free_frames, after.swap_used, after.objects),
                (after.frames, 0, 0),
                "{v}"
            );
        }
        other => panic!("{v} seed {seed}: conservation {other:?}"),
    }
    let s = r.stats;
    assert!(
        s.forks >= 1000 && s.swapins > 0 && s.pageouts > 0,
        "{v}: {s:?}"
    );
}

#[test]
fn swap_prealloc_stays_clean() {
    for seed in 0..3 {
        clean_run(d15293::SWAP_PREALLOC, seed);
    }
}

#[test]
fn split_skip_and_split_restart_stay_clean() {
    for seed in 0..2 {
        clean_run(d15293::SPLIT_SKIP, seed);
        clean_run(d15293::SPLIT_RESTART, seed);
    }
}

#[test]
fn split_pipwait_makes_progress() {
    for seed in 0..2 {
        clean_run(d15293::SPLIT_PIPWAIT, seed);
    }
}
