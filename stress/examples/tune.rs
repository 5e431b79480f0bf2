//! Quick host measurement of how fast the workload catches baseline.
use std::time::Duration;
use stress::Variant;
use stress::host::run_stress;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(16);
    let budget: u64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(3000);
    let variant: Variant = args
        .get(3)
        .map(|s| s.parse().unwrap())
        .unwrap_or(Variant::Baseline);
    let mut caught = 0;
    let mut forks_at = vec![];
    let mut wh = 0;
    let mut splits = 0;
    let mut forks = 0;
    let mut ms = vec![];
    for seed in 0..seeds {
        let r = run_stress(variant, seed, 4, Some(budget), Duration::from_secs(10));
        wh += r.stats.window_hits;
        splits += r.stats.splits;
        forks += r.stats.forks;
        println!(
            "{seed}:{} {:?} forks {} faults {} window {}",
            if r.failure.is_some() { "X" } else { "." },
            r.elapsed,
            r.stats.forks,
            r.stats.faults,
            r.stats.window_hits
        );
        if let Some(f) = &r.failure {
            caught += 1;
            forks_at.push(r.stats.forks);
            ms.push(f.ms);
            if seeds <= 4 {
                println!("{f}");
            }
        }
    }
    forks_at.sort();
    ms.sort();
    println!(
        "{variant}: caught {caught}/{seeds}; forks at detection {:?}; ms {:?}; window hits total {wh}; splits/forks {splits}/{forks}",
        forks_at, ms
    );
}
