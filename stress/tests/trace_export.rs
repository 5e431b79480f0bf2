//! A real failure's trace as a Chrome trace: the baseline race caught on
//! host threads becomes a document that a viewer opens — one named track
//! per CPU that has events, every span closed and nested, events in time
//! order, the catching CPU's oracle event marked fatal.

use std::collections::BTreeSet;
use std::time::Duration;
use stress::scenarios::d15293;

use serde_json::Value;
use stress::chrome_trace::{ChromeTrace, cpu_track, lint};
use stress::host::run_stress;
use stress::timeline::{D15293_WINDOW, Timeline};
use stress::trace::Ev;

#[test]
fn a_caught_baseline_run_exports_a_valid_trace() {
    let f = (0..8)
        .find_map(|seed| {
            run_stress(
                d15293::BASELINE,
                seed,
                4,
                Some(3000),
                Duration::from_secs(20),
            )
            .failure
        })
        .expect("baseline fails on host threads within 8 seeds");
    let text = ChromeTrace::from_failure(&f).to_json().expect("json");
    let v: Value = serde_json::from_str(&text).expect("parses");
    let names = lint(&v).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let cpus: BTreeSet<u32> = f
        .traces
        .iter()
        .filter(|t| !t.events.is_empty())
        .map(|t| t.cpu)
        .collect();
    for &cpu in &cpus {
        assert_eq!(names.get(&(cpu as u64)), Some(&cpu_track(cpu)), "{names:?}");
    }
    let cpu_tracks = names.values().filter(|n| n.starts_with("CPU ")).count();
    assert_eq!(cpu_tracks, cpus.len(), "{names:?}");
    let evs = v["traceEvents"].as_array().unwrap();
    let fatal: Vec<&Value> = evs.iter().filter(|e| e["args"]["fatal"] == true).collect();
    assert_eq!(fatal.len(), 1, "{f}");
    assert_eq!(fatal[0]["tid"], f.cpu);
    assert_eq!(fatal[0]["args"]["detail"], f.detail.as_str());
    assert!(evs.iter().any(|e| e["ph"] == "X" && e["cat"] == "lock"));
    assert_eq!(v["otherData"]["kind"], f.kind.name());
    // The timeline behind it: every span closed within the trace.
    let tl = Timeline::new(&f.traces, Some(f.cpu), &D15293_WINDOW);
    assert!(!tl.spans.is_empty());
    for s in &tl.spans {
        assert!(s.start <= s.end && s.first <= s.last, "{s:?}");
        assert!(s.end <= tl.end() && s.start >= tl.start(), "{s:?}");
    }
    if f.kind == stress::FailureKind::Repopulated
        && let Some(w) = tl.window
    {
        assert_eq!(tl.events[w.opens].1.ev, Ev::GetpagesUnlock);
        assert_eq!(tl.events[w.closes].1.ev, Ev::SplitRestart);
        assert!(w.opens < w.closes);
    }
}

/// The example in docs/ stays a valid trace of a caught failure.
#[test]
fn the_documented_example_is_a_valid_trace() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/scenarios/d15293-trace.json"
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("parses");
    let names = lint(&v).expect("valid");
    let cpus: Vec<&String> = names.values().filter(|n| n.starts_with("CPU ")).collect();
    assert_eq!(cpus.len(), 4, "{names:?}");
    assert_eq!(v["otherData"]["kind"], "repopulated");
    let evs = v["traceEvents"].as_array().unwrap();
    assert_eq!(evs.iter().filter(|e| e["args"]["fatal"] == true).count(), 1);
    assert!(evs.iter().any(|e| e["cat"] == "window"));
}
