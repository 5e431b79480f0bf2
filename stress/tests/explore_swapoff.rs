//! Systematic exploration of the swapoff scenario (fault threads, the page
//! daemon and one swapoff cycle on the small workload) under shuttle's PCT
//! scheduler: the budget that finds pre-r358024's race finds nothing in
//! r358024 while its window opens; a failing schedule replays.

use std::path::PathBuf;
use std::sync::Mutex;

use shuttle::scheduler::PctScheduler;
use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
use stress::Variant;
use stress::failure::{Failure, FailureKind};
use stress::scenarios::d15293::workload::Role;
use stress::scenarios::swapoff::{
    self,
    workload::{Roles, SwapoffWorkload},
};
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
/// Explorations share the global tally: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SEED: u64 = 5;
const THREADS: [(Roles, u64); 4] = [
    (Roles::Base(Role::Fault), 12),
    (Roles::Base(Role::Fault), 12),
    (Roles::Base(Role::Pageout), 8),
    (Roles::Swapoff, 1),
];

/// One execution: the small workload, the roles on shuttle threads; panics
/// (so shuttle records the schedule) if an oracle fired.
fn execution(variant: Variant) {
    let w = std::sync::Arc::new(SwapoffWorkload::small(SEED));
    let mut cfg = w.vm_config(variant, THREADS.len());
    cfg.frames = 48;
    cfg.pbufs = 1;
    let vm = std::sync::Arc::new(Vm::new(ShuttlePlatform::new(256), cfg));
    let mut td = Td::new(0, SEED);
    let parents = std::sync::Arc::new(w.setup(&vm, &mut td).expect("setup"));
    let handles: Vec<_> = THREADS
        .iter()
        .enumerate()
        .map(|(cpu, &(role, budget))| {
            let (vm, w, parents) = (vm.clone(), w.clone(), parents.clone());
            shuttle::thread::spawn(move || {
                let mut td = Td::new(cpu, SEED);
                let _ = w.run_role(&vm, &mut td, &parents, role, Some(budget), &mut |_| {});
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let failure = vm.failure();
    {
        let mut t = TALLY.lock().unwrap();
        let t = t.get_or_insert_with(Tally::default);
        t.executions += 1;
        t.window_hits += vm.counters.snapshot().window_hits;
        if t.failure.is_none() {
            t.failure = failure.clone();
        }
    }
    if let Some(f) = failure {
        panic!("oracle: {f}");
    }
}

fn shuttle_config(dir: Option<PathBuf>) -> Config {
    let mut c = Config::new();
    c.failure_persistence = match dir {
        Some(d) => FailurePersistence::File(Some(d)),
        None => FailurePersistence::None,
    };
    c.max_steps = MaxSteps::FailAfter(2_000_000);
    c
}

fn schedule_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("forkswap-explore-swapoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn schedule_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

fn explore(variant: Variant, budget: usize) -> (Tally, Option<PathBuf>) {
    let dir = schedule_dir();
    let before = schedule_files(&dir);
    *TALLY.lock().unwrap() = Some(Tally::default());
    let runner = Runner::new(
        PctScheduler::new_from_seed(0x358024, 3, budget),
        shuttle_config(Some(dir.clone())),
    );
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runner.run(move || execution(variant))
    }));
    let tally = TALLY.lock().unwrap().take().unwrap();
    let schedule = r.is_err().then(|| {
        schedule_files(&dir)
            .into_iter()
            .find(|p| !before.contains(p))
            .expect("shuttle wrote the schedule")
    });
    (tally, schedule)
}

const BUDGET: usize = 3000;

#[test]
fn pct_finds_the_pre_r358024_race_and_its_schedule_replays() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tally, schedule) = explore(swapoff::PRE_R358024, BUDGET);
    let f = tally
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("PCT found no pre-r358024 failure within the budget: {tally:?}"));
    assert!(
        matches!(
            f.kind,
            FailureKind::SwapUseAfterFree | FailureKind::StaleData
        ),
        "{f}"
    );
    let schedule = schedule.expect("a failing schedule");
    eprintln!(
        "pre-r358024: first failure at execution {} of {BUDGET}: {f}\nschedule: {}",
        tally.executions,
        schedule.display()
    );
    *TALLY.lock().unwrap() = Some(Tally::default());
    let r = std::panic::catch_unwind(|| {
        shuttle::replay_from_file(|| execution(swapoff::PRE_R358024), &schedule)
    });
    assert!(r.is_err(), "the replay failed too");
    let replayed = TALLY
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .failure
        .expect("replay recorded a failure");
    assert_eq!(replayed.kind, f.kind);
    assert_eq!(replayed.detail, f.detail, "same failure, same place");
    let _ = std::fs::remove_file(&schedule);
    let _ = std::fs::remove_dir(schedule_dir());
}

#[test]
fn pct_finds_nothing_in_r358024_with_the_window_open() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tally, schedule) = explore(swapoff::R358024, BUDGET);
    assert!(
        tally.failure.is_none(),
        "{:?} (schedule {:?})",
        tally.failure,
        schedule
    );
    assert_eq!(tally.executions, BUDGET as u64);
    assert!(
        tally.window_hits > 0,
        "the window never opened in {BUDGET} executions"
    );
    let _ = std::fs::remove_dir(schedule_dir());
    eprintln!(
        "r358024: {} executions, {} window hits, no failure",
        tally.executions, tally.window_hits
    );
}
