use std::time::Duration;
use stress::Variant;
use stress::host::run_stress;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let variant: Variant = args
        .get(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(Variant::Baseline);
    let seeds: u64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(5);
    let budget: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(2000);
    let cpus: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(4);
    for seed in 0..seeds {
        let r = run_stress(variant, seed, cpus, Some(budget), Duration::from_secs(5));
        let s = &r.stats;
        println!(
            "seed {seed}: {:?} in {:?}; forks {} faults {} swapins {} rbehind {} window {} wasted {} discarded {} leaked {} splits {} busy_sleeps {} pbuf_sleeps {} ts_retries {} pageouts {} swapouts {} zero {} cow {} shadows {} collapses {}",
            r.failure
                .as_ref()
                .map(|f| format!("{} {}", f.kind, f.detail)),
            r.elapsed,
            s.forks,
            s.faults,
            s.swapins,
            s.rbehind_pages,
            s.window_hits,
            s.wasted,
            s.discarded,
            s.leaked,
            s.splits,
            s.split_busy_sleeps,
            s.pbuf_sleeps,
            s.fault_timestamp_retries,
            s.pageouts,
            s.swapouts,
            s.zero_fills,
            s.cow_faults,
            s.shadows,
            s.collapses
        );
        if let Some(c) = &r.census {
            println!(
                "   census: {:?}",
                c.as_ref().map(|(a, b)| (
                    a.resident,
                    a.swap_used,
                    b.free_frames,
                    b.swap_used,
                    b.objects
                ))
            );
        }
    }
}
