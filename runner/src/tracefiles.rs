//! The trace files of a finding: its per-CPU trace as Chrome Trace Event
//! Format JSON ([`stress::chrome_trace`]; Perfetto and chrome://tracing open
//! it) and as an SVG swimlane ([`crate::swimlane`]). `stress --trace-out
//! PATH --trace-svg PATH` writes them for its boot; `compare --trace-dir
//! DIR` writes `DIR/<variant>-<seed>.trace.json` and `.svg` for every
//! caught or hung boot. Files are written atomically.

use std::path::{Path, PathBuf};

use anyhow::Context;
use stress::Variant;
use stress::chrome_trace::ChromeTrace;
use stress::proto::{Record, StressRequest};
use stress::scenarios::ScenarioId;
use stress::timeline::Timeline;

use crate::boot::BootOutcome;
use crate::seed;

/// What a finding's trace files are made of.
pub struct Finding {
    pub trace: ChromeTrace,
    pub timeline: Timeline,
    pub title: String,
    pub detail: String,
}

impl Finding {
    /// The boot's failure (its first), else its hang; `None` when the
    /// kernel reported neither.
    pub fn of(out: &BootOutcome) -> Option<Finding> {
        if let Some(f) = out.console.failures().next() {
            let title = format!(
                "forkswap {} seed {}: {} caught on cpu {} at {} ms",
                f.variant,
                seed::show(f.seed),
                f.kind,
                f.cpu,
                f.ms
            );
            return Some(Finding {
                trace: ChromeTrace::from_failure(f),
                timeline: Timeline::new(&f.traces, Some(f.cpu), &f.scenario.get().trace_window),
                title,
                detail: f.detail.clone(),
            });
        }
        let Some(Record::Hang { ms, waits, traces }) = out.console.hang() else {
            return None;
        };
        let title = format!("forkswap: hang, no progress for {ms} ms");
        let detail = waits
            .iter()
            .map(|w| format!("cpu{}: {} ({} ms)", w.cpu, w.wait, w.stalled_ms))
            .collect::<Vec<_>>()
            .join("; ");
        let rule = scenario_of(out).get().trace_window;
        Some(Finding {
            trace: ChromeTrace::from_traces(traces, None, &title, &rule),
            timeline: Timeline::new(traces, None, &rule),
            title,
            detail,
        })
    }

    /// Writes the JSON and/or the SVG; returns one line per file written.
    pub fn write(&self, json: Option<&Path>, svg: Option<&Path>) -> anyhow::Result<Vec<String>> {
        let mut said = Vec::new();
        if let Some(p) = json {
            let text = self.trace.to_json().context("cannot encode the trace")?;
            crate::json::write_file_atomic(p, text.as_bytes())?;
            said.push(format!(
                "trace:    {} (Chrome trace: ui.perfetto.dev or chrome://tracing)",
                p.display()
            ));
        }
        if let Some(p) = svg {
            crate::swimlane::write(p, &self.timeline, &self.title, &self.detail)?;
            said.push(format!("swimlane: {} (SVG)", p.display()));
        }
        Ok(said)
    }
}

/// The scenario a boot ran, from the stress request its Hello record
/// echoes ([`StressRequest`], as the kernel parses it; the first scenario
/// when there is none). A failure names its own; a hang needs this.
fn scenario_of(out: &BootOutcome) -> ScenarioId {
    out.console
        .records()
        .find_map(|r| match r {
            Record::Hello { cmdline, .. } => cmdline.parse::<StressRequest>().ok(),
            _ => None,
        })
        .map(|req| req.scenario())
        .unwrap_or_default()
}

/// `compare --trace-dir`: the two files of one boot.
pub fn in_dir(dir: &Path, variant: Variant, seed: u64) -> (PathBuf, PathBuf) {
    let stem = format!("{}-{}", variant.name(), seed::show(seed));
    (
        dir.join(format!("{stem}.trace.json")),
        dir.join(format!("{stem}.svg")),
    )
}

/// Creates `--trace-dir` (before the first boot, so that a bad path costs
/// no boot time).
pub fn ensure_dir(dir: &Path) -> Result<(), crate::error::Error> {
    std::fs::create_dir_all(dir).map_err(|e| {
        crate::error::Error::Usage(format!(
            "--trace-dir {}: cannot create the directory: {e}",
            dir.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use crate::verdict::Exit;
    use stress::FailureKind;
    use stress::scenarios::{collapse, d15293};
    use stress::timeline::{COLLAPSE_WINDOW, D15293_WINDOW, SWAPOFF_WINDOW};

    #[test]
    fn a_failure_gets_its_scenarios_window() {
        // The same rings, caught in a collapse run: collapse's rule, which
        // finds no collapse race in them (no D15293 window either).
        let Record::Failure(mut f) = failure(d15293::BASELINE, 0x2a, FailureKind::StaleData) else {
            unreachable!()
        };
        f.variant = collapse::R357091_BEFORE;
        f.scenario = collapse::R357091_BEFORE.scenario_id();
        let out = outcome(vec![hello(), ready(), Record::Failure(f)], Exit::Status(35));
        let c = Finding::of(&out).expect("a finding");
        assert_eq!(c.timeline.window_label, COLLAPSE_WINDOW.label);
        assert_eq!(c.timeline.window, None);
        assert!(!c.trace.trace_events.iter().any(|e| e.cat == "window"));
        let text = crate::swimlane::svg(&c.timeline, &c.title, &c.detail).expect("svg");
        let t = crate::swimlane::tests::texts(&text);
        assert!(t.iter().any(|x| x == COLLAPSE_WINDOW.label), "{t:?}");
        assert!(t.iter().any(|x| x.contains("no race window")), "{t:?}");
    }

    #[test]
    fn a_caught_boot_writes_both_files() {
        let out = outcome(
            vec![
                hello(),
                ready(),
                failure(d15293::BASELINE, 0x2a, FailureKind::Repopulated),
                done(false, 1300, Some(stats(3))),
            ],
            Exit::Status(35),
        );
        let f = Finding::of(&out).expect("a finding");
        // D15293's rule finds the window in D15293's trace.
        assert_eq!(f.timeline.window_label, D15293_WINDOW.label);
        assert!(f.timeline.window.is_some());
        assert!(
            f.trace.trace_events.iter().any(|e| e.cat == "window"),
            "the JSON has the window"
        );
        assert!(
            f.title.contains("repopulated caught on cpu 2"),
            "{}",
            f.title
        );
        let dir = tempfile::tempdir().expect("dir");
        let (json, svg) = in_dir(dir.path(), d15293::BASELINE, 0x2a);
        assert!(json.ends_with("baseline-0x2a.trace.json"));
        let said = f.write(Some(&json), Some(&svg)).expect("write");
        assert_eq!(said.len(), 2);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
        let names = stress::chrome_trace::lint(&v).expect("lint");
        assert!(names.values().any(|n| n == "CPU 2"), "{names:?}");
        let text = std::fs::read_to_string(&svg).expect("svg");
        let t = crate::swimlane::tests::texts(&text);
        assert!(t.iter().any(|x| x == "CPU 2 (its oracle fired)"), "{t:?}");
        // A hang: its waits are the detail, no CPU is marked as the catcher.
        let hang = outcome(
            vec![
                hello(),
                ready(),
                Record::Hang {
                    ms: 2000,
                    waits: vec![stress::proto::CpuWait {
                        cpu: 1,
                        wait: "pip obj 3".into(),
                        stalled_ms: 2000,
                    }],
                    traces: vec![stress::trace::CpuTrace {
                        cpu: 1,
                        events: vec![stress::trace::TraceEvent {
                            t: 5,
                            ev: stress::trace::Ev::SplitPipWait,
                            obj: 3,
                            pindex: 0,
                            arg: 1,
                        }],
                    }],
                },
            ],
            Exit::Status(35),
        );
        let h = Finding::of(&hang).expect("a hang is a finding");
        assert!(h.title.contains("hang") && h.detail == "cpu1: pip obj 3 (2000 ms)");
        let svg = crate::swimlane::svg(&h.timeline, &h.title, &h.detail).expect("svg");
        let t = crate::swimlane::tests::texts(&svg);
        assert!(t.iter().any(|x| x == "CPU 1") && !t.iter().any(|x| x.contains("oracle fired)")));
        let names = stress::chrome_trace::lint(
            &serde_json::from_str(&h.trace.to_json().expect("json")).expect("parses"),
        )
        .expect("lint");
        assert_eq!(names.get(&1).map(String::as_str), Some("CPU 1"));
        // A swapoff hang takes swapoff's window rule, named by the command
        // line; with no scenario= word, the first scenario's.
        let swapoff_hang = |cmdline: &str| {
            let mut recs = hang.console.records().cloned().collect::<Vec<_>>();
            recs[0] = Record::Hello {
                kernel: "0.1.0".into(),
                cpus: 4,
                mem_mib: 256,
                transport: "mmio".into(),
                cmdline: cmdline.into(),
            };
            Finding::of(&outcome(recs, Exit::Status(35))).expect("finding")
        };
        let s = swapoff_hang(
            "mode=stress scenario=swapoff variant=pre-r358024 seed=1 duration_ms=5000",
        );
        assert_eq!(s.timeline.window_label, SWAPOFF_WINDOW.label);
        let d = swapoff_hang("mode=stress variant=baseline seed=1 duration_ms=5000");
        assert_eq!(d.timeline.window_label, D15293_WINDOW.label);
        // A clean boot has no finding.
        let clean = outcome(
            vec![hello(), ready(), done(true, 5000, Some(stats(0)))],
            Exit::Status(33),
        );
        assert!(Finding::of(&clean).is_none());
    }
}
