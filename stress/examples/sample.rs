use std::time::Duration;
use stress::Variant;
use stress::host::HostPlatform;
use stress::vm::{Td, Vm};
use stress::workload::{Workload, roles};

fn main() {
    let w = Workload::for_seed(0);
    let vm = Vm::new(
        HostPlatform::new(4096),
        w.vm_config(Variant::SwapPrealloc, 4),
    );
    let mut td0 = Td::new(0, 0);
    let parents = vm.setup(&mut td0, &w).unwrap();
    println!("after setup resident {}", vm.resident());
    std::thread::scope(|s| {
        for (cpu, role) in roles(4).into_iter().enumerate() {
            let (vm, w, parents) = (&vm, &w, &parents);
            s.spawn(move || {
                let mut td = Td::new(cpu, 0);
                let _ = vm.run_role(&mut td, w, parents, role, None);
            });
        }
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(100));
            let st = vm.counters.snapshot();
            println!(
                "resident {} forks {} splits {} faults {} swapins {} pageouts {} loads {} stores {} window {} shadows {} collapses {} cow {}",
                vm.resident(),
                st.forks,
                st.splits,
                st.faults,
                st.swapins,
                st.pageouts,
                st.loads,
                st.stores,
                st.window_hits,
                st.shadows,
                st.collapses,
                st.cow_faults
            );
        }
        vm.request_finish();
    });
}
