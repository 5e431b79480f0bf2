//! Test helpers shared by the unit tests: boot outcomes judged from
//! synthetic consoles, and ready-made boot results.

use std::time::Duration;

use stress::proto::{self, Frame, Record, Verdict as KVerdict};
use stress::scenarios::d15293;
use stress::trace::{CpuTrace, Ev, TraceEvent};
use stress::{Failure, FailureKind, Stats, Variant};

use crate::boot::{BootOutcome, Timings};
use crate::console::{Console, LineEnd};
use crate::qemu::{Accel, Machine};
use crate::stress_result::{BootResult, Outcome};
use crate::stress_spec::StressSpec;
use crate::verdict::{self, Ending, Exit};

/// The outcome of a boot that printed these records (each a line, `seq`
/// numbered from 0, 100 ms apart) and ended with `exit`.
pub fn outcome(records: Vec<Record>, exit: Exit) -> BootOutcome {
    let mut c = Console::new(20);
    let mut at = Duration::ZERO;
    for (seq, rec) in records.into_iter().enumerate() {
        at += Duration::from_millis(100);
        let line = proto::encode(&Frame {
            seq: seq as u64,
            cpu: 0,
            rec,
        });
        c.push(line.as_bytes(), at, LineEnd::Newline);
    }
    let judgement = verdict::judge(
        &c,
        &Ending {
            exit: &exit,
            stderr_tail: &[],
            elapsed: at,
            quiet: Duration::from_secs(2),
        },
    );
    BootOutcome {
        judgement,
        console: c,
        timings: Timings::default(),
        exit,
        stderr_tail: Vec::new(),
        command: "qemu".into(),
    }
}

pub fn hello() -> Record {
    Record::Hello {
        kernel: "0.1.0".into(),
        cpus: 4,
        mem_mib: 256,
        transport: "mmio".into(),
        cmdline: "mode=stress".into(),
    }
}

pub fn ready() -> Record {
    Record::Ready {
        cpus: 4,
        boot_ns: 1_000_000,
    }
}

pub fn stats(window_hits: u64) -> Stats {
    Stats {
        forks: 10,
        faults: 100,
        swapins: 20,
        swapin_pages: 80,
        window_hits,
        ..Stats::default()
    }
}

pub fn progress(ms: u64, window_hits: u64) -> Record {
    Record::Progress {
        ms,
        stats: stats(window_hits),
    }
}

pub fn done(pass: bool, ms: u64, stats: Option<Stats>) -> Record {
    Record::Done {
        verdict: if pass { KVerdict::Pass } else { KVerdict::Fail },
        ms,
        stats,
    }
}

/// A Failure record of `variant`/`seed` on cpu 2 with a short trace.
pub fn failure(variant: Variant, seed: u64, kind: FailureKind) -> Record {
    let ev = |t, ev, pindex| TraceEvent {
        t,
        ev,
        obj: 7,
        pindex,
        arg: 1,
    };
    Record::Failure(Failure {
        kind,
        seed,
        scenario: variant.scenario_id(),
        variant,
        cpu: 2,
        ms: 1234,
        detail: "split found pindex 3 repopulated".into(),
        traces: vec![
            CpuTrace {
                cpu: 0,
                events: vec![ev(1_000_000, Ev::GetpagesUnlock, 5)],
            },
            CpuTrace {
                cpu: 2,
                events: vec![ev(2_000_000, Ev::SplitRestart, 0)],
            },
        ],
    })
}

/// Baseline, seed 0x2a, 4 CPUs, 5 s, microvm, TCG chosen by `auto`.
pub fn stress_spec() -> StressSpec {
    StressSpec {
        variant: d15293::BASELINE,
        seed: 0x2a,
        cpus: 4,
        duration: Duration::from_secs(5),
        machine: Machine::Microvm,
        accel: Accel::Tcg,
        accel_flag: None,
        kernel_flag: None,
        steer: true,
    }
}

/// A boot result with counters: 100 faults and 10 forks in 1000 ms.
pub fn result(variant: Variant, outcome: Outcome, window_hits: u64) -> BootResult {
    BootResult {
        scenario: variant.scenario_id(),
        variant,
        seed: 1,
        cpus: 4,
        seconds: 1.0,
        machine: Machine::Microvm,
        accel: Accel::Tcg,
        outcome,
        verdict: "Pass".into(),
        reason: String::new(),
        exit_status: outcome.exit_status(),
        qemu_status: Some(33),
        failure: None,
        hang: None,
        stats: (outcome != Outcome::Infra).then(|| stats(window_hits)),
        run_ms: (outcome != Outcome::Infra).then_some(1000),
        elapsed_ms: 1500,
        replay: String::new(),
        ended: None,
    }
}
