fn main() {
    for seed in 11..21u64 {
        let w = stress::workload::Workload::for_seed(seed);
        let c = w.vm_config(stress::Variant::Baseline, 4);
        println!(
            "{seed}: clips {:?} store {:?} child {}/{} remap {} pbufs {}",
            w.regions[0].clips,
            w.store_per_64k,
            w.child_loads,
            w.child_stores,
            w.remap_per_64k,
            c.pbufs
        );
    }
}
