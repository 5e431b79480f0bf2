//! PCT exploration of the collapse scenario's real workload (fork tree,
//! page daemon, two fault threads; small budgets) under shuttle: the budget
//! that finds r357091-before's lost page finds nothing for r357091 while
//! the window (a collapse began with a fault in the chain) opens; a failing
//! schedule replays to the same failure.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use shuttle::scheduler::PctScheduler;
use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
use stress::Variant;
use stress::failure::{Failure, FailureKind};
use stress::scenarios::collapse::{
    self,
    workload::{Tree, roles},
};
use stress::scenarios::d15293::workload::Workload;
use stress::vm::{Td, Vm};

#[path = "common/shuttle_platform.rs"]
mod shuttle_platform;
use shuttle_platform::ShuttlePlatform;

#[derive(Default, Debug)]
struct Tally {
    executions: u64,
    window_hits: u64,
    failure: Option<Failure>,
}

static TALLY: Mutex<Option<Tally>> = Mutex::new(None);
static SERIAL: Mutex<()> = Mutex::new(());

const SEED: u64 = 5;
const CPUS: usize = 4;
/// Iterations per role (fork tree, page daemon, fault, fault).
const BUDGETS: [u64; CPUS] = [6, 4, 6, 6];
const BUDGET: usize = 2000;

/// The collapse tree over the small D15293 layout (one 16-page region).
fn tree() -> Tree {
    let mut t = Tree::for_seed(SEED);
    let (loads, stores) = (t.w.child_loads, t.w.child_stores);
    t.w = Workload::small(SEED);
    t.w.child_loads = loads;
    t.w.child_stores = stores;
    t.w.store_per_64k = [24_000, 8_000];
    t
}

fn execution(variant: Variant) {
    let t = Arc::new(tree());
    let mut cfg = t.vm_config(variant, CPUS);
    cfg.frames = 48;
    cfg.pbufs = 1;
    let vm = Arc::new(Vm::new(ShuttlePlatform::new(256), cfg));
    let mut td = Td::new(0, SEED);
    let st = Arc::new(t.setup(&vm, &mut td).expect("setup"));
    let handles: Vec<_> = roles(CPUS)
        .into_iter()
        .enumerate()
        .map(|(cpu, role)| {
            let (vm, t, st) = (vm.clone(), t.clone(), st.clone());
            shuttle::thread::spawn(move || {
                let mut td = Td::new(cpu, SEED);
                let _ = t.run_role(&vm, &mut td, &st, role, Some(BUDGETS[cpu]), &mut |_| {});
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let failure = vm.failure();
    {
        let mut g = TALLY.lock().unwrap();
        let g = g.get_or_insert_with(Tally::default);
        g.executions += 1;
        g.window_hits += vm.counters.snapshot().window_hits;
        if g.failure.is_none() {
            g.failure = failure.clone();
        }
    }
    if let Some(f) = failure {
        panic!("oracle: {f}");
    }
}

fn schedule_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("forkswap-explore-collapse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn explore(variant: Variant, budget: usize) -> (Tally, Option<PathBuf>) {
    let dir = schedule_dir();
    let before: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    *TALLY.lock().unwrap() = Some(Tally::default());
    let mut c = Config::new();
    c.failure_persistence = FailurePersistence::File(Some(dir.clone()));
    c.max_steps = MaxSteps::FailAfter(2_000_000);
    let runner = Runner::new(PctScheduler::new_from_seed(0xd22908, 3, budget), c);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runner.run(move || execution(variant))
    }));
    let tally = TALLY.lock().unwrap().take().unwrap();
    let schedule = r.is_err().then(|| {
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| !before.contains(p))
            .expect("shuttle wrote the schedule")
    });
    (tally, schedule)
}

#[test]
fn pct_finds_r357091_before_and_its_schedule_replays() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tally, schedule) = explore(collapse::R357091_BEFORE, BUDGET);
    let f = tally
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("PCT found no failure within the budget: {tally:?}"));
    assert_eq!(f.kind, FailureKind::StaleData, "{f}");
    let schedule = schedule.expect("a failing schedule");
    eprintln!(
        "r357091-before: first failure at execution {} of {BUDGET}: {f}",
        tally.executions
    );
    *TALLY.lock().unwrap() = Some(Tally::default());
    let r = std::panic::catch_unwind(|| {
        shuttle::replay_from_file(|| execution(collapse::R357091_BEFORE), &schedule)
    });
    assert!(r.is_err(), "the replay failed too");
    let replayed = TALLY.lock().unwrap().take().unwrap().failure.unwrap();
    assert_eq!((replayed.kind, &replayed.detail), (f.kind, &f.detail));
    let _ = std::fs::remove_file(&schedule);
    let _ = std::fs::remove_dir(schedule_dir());
}

#[test]
fn pct_finds_nothing_in_r357091_with_the_window_open() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tally, schedule) = explore(collapse::R357091, BUDGET);
    assert!(
        tally.failure.is_none(),
        "{:?} ({schedule:?})",
        tally.failure
    );
    assert_eq!(tally.executions, BUDGET as u64);
    assert!(tally.window_hits > 0, "the window never opened: {tally:?}");
    eprintln!(
        "r357091: {} executions, {} window hits, no failure",
        tally.executions, tally.window_hits
    );
    let _ = std::fs::remove_dir(schedule_dir());
}
