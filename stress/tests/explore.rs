//! Systematic exploration of the real workload (2–3 threads: fork loop,
//! faults, page daemon) under shuttle's PCT scheduler. The same budget that
//! finds the baseline race must find no failure for the committed fix while
//! the race window does open; a failing schedule must replay.

use std::path::PathBuf;
use std::sync::Mutex;

use shuttle::scheduler::PctScheduler;
use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
use stress::Variant;
use stress::failure::{Failure, FailureKind};
use stress::scenarios::d15293::{
    self,
    workload::{Role, Workload},
};
use stress::vm::{Td, Vm};

#[path = "common/shuttle_platform.rs"]
mod shuttle_platform;
use shuttle_platform::ShuttlePlatform;

/// What every execution of one exploration adds up to.
#[derive(Default, Debug)]
struct Tally {
    executions: u64,
    window_hits: u64,
    failure: Option<Failure>,
}

static TALLY: Mutex<Option<Tally>> = Mutex::new(None);
/// Explorations share the global tally: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SEED: u64 = 3;
const THREADS: [(Role, u64); 3] = [(Role::Fork, 2), (Role::Fault, 6), (Role::Fault, 6)];

/// One execution: set up the small workload, run the roles on shuttle
/// threads, and panic (so shuttle records the schedule) if an oracle fired.
fn execution(variant: Variant) {
    let w = Workload::small(SEED);
    let mut cfg = w.vm_config(variant, THREADS.len());
    cfg.frames = 48;
    cfg.pbufs = 1;
    let vm = std::sync::Arc::new(Vm::new(ShuttlePlatform::new(256), cfg));
    let mut td = Td::new(0, SEED);
    let parents = std::sync::Arc::new(vm.setup(&mut td, &w).expect("setup"));
    let handles: Vec<_> = THREADS
        .iter()
        .enumerate()
        .map(|(cpu, &(role, budget))| {
            let (vm, w, parents) = (vm.clone(), w.clone(), parents.clone());
            shuttle::thread::spawn(move || {
                let mut td = Td::new(cpu, SEED);
                let _ = vm.run_role(&mut td, &w, &parents, role, Some(budget));
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

/// Where failing schedules go. One directory per test process: shuttle's
/// panic hook keeps the first configuration it saw.
fn schedule_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("forkswap-explore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn schedule_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Writes a replayed failure's trace as Chrome Trace Event Format JSON
/// (ui.perfetto.dev, chrome://tracing) to
/// `target/tmp/forkswap-traces/<name>.trace.json` (atomically) and returns
/// the path.
fn write_trace(f: &Failure, name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("forkswap-traces");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.trace.json"));
    let tmp = dir.join(format!(".{name}.trace.json.{}", std::process::id()));
    let text = stress::chrome_trace::ChromeTrace::from_failure(f)
        .to_json()
        .unwrap();
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// Runs up to `budget` PCT executions; returns the tally and the file of the
/// failing schedule, if one failed.
fn explore(variant: Variant, budget: usize) -> (Tally, Option<PathBuf>) {
    let dir = schedule_dir();
    let before = schedule_files(&dir);
    *TALLY.lock().unwrap() = Some(Tally::default());
    let runner = Runner::new(
        PctScheduler::new_from_seed(0x0d15293, 3, budget),
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

const BUDGET: usize = 5000;

#[test]
fn pct_finds_the_baseline_race_and_its_schedule_replays() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tally, schedule) = explore(d15293::BASELINE, BUDGET);
    let f = tally
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("PCT found no baseline failure within the budget: {tally:?}"));
    assert!(
        matches!(
            f.kind,
            FailureKind::Repopulated | FailureKind::DuplicatePage
        ),
        "{f}"
    );
    let schedule = schedule.expect("a failing schedule");
    let encoded = std::fs::read_to_string(&schedule).unwrap();
    eprintln!(
        "baseline: first failure at execution {} of {BUDGET}: {f}\nschedule ({}):\n{}\nreplay: FORKSWAP_SCHEDULE={} FORKSWAP_VARIANT=baseline cargo test -p stress --test explore replay -- --ignored --nocapture",
        tally.executions,
        schedule.display(),
        encoded.trim(),
        schedule.display(),
    );
    // Replaying the schedule fails the same way.
    *TALLY.lock().unwrap() = Some(Tally::default());
    let r = std::panic::catch_unwind(|| {
        shuttle::replay_from_file(|| execution(d15293::BASELINE), &schedule)
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
    let trace = write_trace(&replayed, "pct-baseline");
    eprintln!("replayed trace: {}", trace.display());
    let doc = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let tracks = stress::chrome_trace::lint(&doc).unwrap();
    assert_eq!(
        tracks.values().filter(|n| n.starts_with("CPU ")).count(),
        THREADS.len(),
        "{tracks:?}"
    );
    let _ = std::fs::remove_file(&schedule);
    // Leave no empty schedule directory behind.
    let _ = std::fs::remove_dir(schedule_dir());
}

#[test]
fn pct_finds_nothing_in_swap_prealloc_with_the_window_open() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tally, schedule) = explore(d15293::SWAP_PREALLOC, BUDGET);
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
        "swap-prealloc: {} executions, {} window hits, no failure",
        tally.executions, tally.window_hits
    );
}

/// Replays a schedule file written by a failing exploration:
/// `FORKSWAP_SCHEDULE=path FORKSWAP_VARIANT=name cargo test -p stress --test explore replay -- --ignored --nocapture`
#[test]
#[ignore = "replays a schedule named by FORKSWAP_SCHEDULE"]
fn replay() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path =
        std::env::var("FORKSWAP_SCHEDULE").expect("set FORKSWAP_SCHEDULE to a schedule file");
    let variant: Variant = std::env::var("FORKSWAP_VARIANT")
        .unwrap_or_else(|_| "baseline".into())
        .parse()
        .unwrap();
    *TALLY.lock().unwrap() = Some(Tally::default());
    let r =
        std::panic::catch_unwind(|| shuttle::replay_from_file(move || execution(variant), &path));
    let t = TALLY.lock().unwrap().take().unwrap();
    match t.failure {
        Some(f) => {
            eprintln!("replayed: {f}");
            for (cpu, e) in stress::trace::interleave(&f.traces) {
                eprintln!("  cpu{cpu} {e}");
            }
            let stem = std::path::Path::new(&path)
                .file_stem()
                .map_or("schedule".into(), |s| s.to_string_lossy().into_owned());
            let trace = write_trace(&f, &format!("replay-{variant}-{stem}"));
            eprintln!(
                "trace (Chrome Trace Event Format; ui.perfetto.dev, chrome://tracing): {}",
                trace.display()
            );
        }
        None => eprintln!("replayed without failure ({r:?})"),
    }
}

/// The exploration figures for every variant (for docs/scenarios/d15293.md):
/// `cargo test --release -p stress --test explore figures -- --ignored --nocapture`
#[test]
#[ignore = "prints figures for every variant; slow in debug builds"]
fn figures() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("| variant | executions run | first failure at | kind | window hits |");
    eprintln!("|---|---|---|---|---|");
    for v in stress::ScenarioId::DEFAULT.variants() {
        let (t, schedule) = explore(v, BUDGET);
        if let Some(p) = schedule {
            let _ = std::fs::remove_file(p);
        }
        let (at, kind) = match &t.failure {
            Some(f) => (t.executions.to_string(), f.kind.to_string()),
            None => ("—".into(), "none".into()),
        };
        eprintln!(
            "| {v} | {} | {at} | {kind} | {} |",
            t.executions, t.window_hits
        );
    }
}
