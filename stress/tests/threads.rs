//! The real workload on real threads (4 CPUs, the default seeded workload):
//! variants that must not corrupt memory run a fixed budget without any
//! oracle firing, and the books balance afterwards.

use std::time::{Duration, Instant};

use stress::Variant;
use stress::host::{HostPlatform, drive, run_stress};
use stress::run::Driver;
use stress::scenarios::Knobs;
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

/// swap-prealloc through a million race windows on host threads (4 threads,
/// steered, seeds 1, 2, … of 20,000 fork-loop iterations each, every run
/// audited at its end): not a kernel run, the same model and oracles on
/// Linux threads, which open windows ~10× faster than TCG's vCPUs.
/// `cargo test -p stress --release --test threads -- --ignored --nocapture`
#[test]
#[ignore]
fn swap_prealloc_survives_a_million_windows() {
    const WINDOWS: u64 = 1_000_000;
    let t0 = Instant::now();
    let (mut hits, mut forks, mut faults, mut seed) = (0u64, 0u64, 0u64, 1u64);
    while hits < WINDOWS {
        let d = Driver::with_config(
            HostPlatform::new(4096),
            d15293::SWAP_PREALLOC,
            seed,
            Knobs::default(),
            4,
            60_000_000_000,
            |_| {},
        );
        let r = drive(d, Some(20_000));
        assert_eq!(
            r.failure,
            None,
            "seed {seed}: {}",
            r.failure.as_ref().unwrap()
        );
        assert!(
            r.hang.is_none(),
            "seed {seed}: {:?}",
            r.hang.map(|h| h.summary())
        );
        let (_, after) = r.census.expect("audited at the end");
        assert_eq!((after.swap_used, after.objects), (0, 0), "seed {seed}");
        assert!(
            r.stats.window_hits > 0,
            "seed {seed}: the window never opened"
        );
        hits += r.stats.window_hits;
        forks += r.stats.forks;
        faults += r.stats.faults;
        eprintln!(
            "seed {seed}: {} hits (total {hits}) in {:.0} s",
            r.stats.window_hits,
            t0.elapsed().as_secs_f64()
        );
        seed += 1;
    }
    eprintln!(
        "swap-prealloc: 0 failures in {hits} window hits ({forks} forks, {faults} faults, {} runs) in {:.0} s",
        seed - 1,
        t0.elapsed().as_secs_f64()
    );
}
