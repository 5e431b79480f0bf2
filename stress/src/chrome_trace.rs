//! A failure's per-CPU trace in the Chrome Trace Event Format (the JSON
//! object form), which Perfetto (ui.perfetto.dev) and chrome://tracing open.
//!
//! The serde model covers the part of the format used here: the object
//! `{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}`;
//! events with `name`, `cat`, `ph`, `ts` (microseconds), `dur`, `pid`,
//! `tid`, `s` (instant scope), `cname` (a reserved colour name) and `args`;
//! phases `X` (complete: a span with its duration), `i` (instant) and `M`
//! (metadata: `process_name`, `thread_name`, `thread_sort_index`).
//!
//! [`ChromeTrace::from_timeline`] makes one: process 1 is the run, one
//! thread (track) per CPU named `CPU n`; every [`Span`](crate::timeline::Span)
//! a complete event, every event that is not a span boundary an instant,
//! the catching CPU's oracle event an instant named `FATAL: ...` with
//! `args.fatal = true`; the race window is a span on a track of its own.
//! Events are written metadata first, then in time order (outer spans
//! before the spans and instants they contain).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::failure::Failure;
use crate::timeline::{Timeline, WindowRule};
use crate::trace::{CpuTrace, Ev};

/// The JSON object form of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChromeTrace {
    /// The events, in any order.
    pub trace_events: Vec<ChromeEvent>,
    /// How viewers show times (`ts` is always in microseconds).
    pub display_time_unit: TimeUnit,
    /// Metadata shown by the viewer's metadata view.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_data: BTreeMap<String, Value>,
}

/// `displayTimeUnit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Milliseconds.
    Ms,
    /// Nanoseconds.
    Ns,
}

/// `ph`: the event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[serde(rename = "B")]
    /// `B`: a duration begins.
    Begin,
    #[serde(rename = "E")]
    /// `E`: a duration ends.
    End,
    #[serde(rename = "X")]
    /// `X`: a complete event (`ts` + `dur`).
    Complete,
    #[serde(rename = "i", alias = "I")]
    /// `i`: an instant event.
    Instant,
    #[serde(rename = "M")]
    /// `M`: metadata (process and thread names).
    Metadata,
}

/// `s`: the scope of an instant event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "g")]
    /// `g`: the whole trace.
    Global,
    #[serde(rename = "p")]
    /// `p`: the process.
    Process,
    #[serde(rename = "t")]
    /// `t`: the thread.
    Thread,
}

/// One trace event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChromeEvent {
    /// The event's name.
    pub name: String,
    /// Comma-separated categories.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cat: String,
    /// The event type.
    pub ph: Phase,
    /// Microseconds.
    pub ts: f64,
    /// Microseconds (complete events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dur: Option<f64>,
    /// Process id (one run).
    pub pid: u32,
    /// Thread id (one CPU).
    pub tid: u32,
    /// Instant events.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// A reserved colour name of the trace viewer (e.g. `terrible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    /// Free-form arguments shown in the viewer.
    pub args: BTreeMap<String, Value>,
}

/// The one process of a trace: the run.
pub const PID: u32 = 1;
/// The race window's track (after every CPU).
pub const WINDOW_TID: u32 = 1_000_000;

/// The track name of a CPU.
pub fn cpu_track(cpu: u32) -> String {
    format!("CPU {cpu}")
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn args<const N: usize>(kv: [(&str, Value); N]) -> BTreeMap<String, Value> {
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn meta(name: &str, tid: u32, key: &str, value: Value) -> ChromeEvent {
    ChromeEvent {
        name: name.into(),
        cat: String::new(),
        ph: Phase::Metadata,
        ts: 0.0,
        dur: None,
        pid: PID,
        tid,
        scope: None,
        cname: None,
        args: args([(key, value)]),
    }
}

impl ChromeTrace {
    /// The trace of a caught failure, with its scenario's race window
    /// ([`crate::scenarios::Scenario::trace_window`]).
    pub fn from_failure(f: &Failure) -> Self {
        let title = format!(
            "forkswap {} seed {:#x}: {} on cpu {}",
            f.variant, f.seed, f.kind, f.cpu
        );
        let rule = f.scenario.get().trace_window;
        let mut t = Self::from_traces(&f.traces, Some(f.cpu), &title, &rule);
        for (k, v) in [
            ("variant", Value::from(f.variant.name())),
            ("seed", Value::from(format!("{:#x}", f.seed))),
            ("kind", Value::from(f.kind.name())),
            ("cpu", Value::from(f.cpu)),
            ("ms", Value::from(f.ms)),
            ("detail", Value::from(f.detail.as_str())),
        ] {
            t.other_data.insert(k.into(), v);
        }
        for e in &mut t.trace_events {
            if e.args.contains_key("fatal") {
                e.args
                    .insert("detail".into(), Value::from(f.detail.as_str()));
            }
        }
        t
    }

    /// The trace of some trace rings; `caught_by` is the CPU whose oracle
    /// fired (its last oracle event is marked fatal).
    pub fn from_traces(
        traces: &[CpuTrace],
        caught_by: Option<u32>,
        title: &str,
        rule: &WindowRule,
    ) -> Self {
        Self::from_timeline(&Timeline::new(traces, caught_by, rule), title)
    }

    /// The trace of a timeline (see the module doc).
    pub fn from_timeline(tl: &Timeline, title: &str) -> Self {
        let mut ev = Vec::new();
        ev.push(meta("process_name", 0, "name", Value::from(title)));
        for &cpu in &tl.cpus {
            ev.push(meta(
                "thread_name",
                cpu,
                "name",
                Value::from(cpu_track(cpu)),
            ));
            ev.push(meta(
                "thread_sort_index",
                cpu,
                "sort_index",
                Value::from(cpu),
            ));
        }
        let what = |i: usize| Value::from(format!("{}", tl.events[i].1.what()));
        for s in &tl.spans {
            let mut a = args([("from", what(s.first)), ("to", what(s.last))]);
            if s.clipped_start {
                a.insert("clipped".into(), "started before the CPU's ring".into());
            }
            if s.clipped_end {
                a.insert("clipped".into(), "still open when the trace ended".into());
            }
            ev.push(ChromeEvent {
                name: s.name.clone(),
                cat: s.cat.name().into(),
                ph: Phase::Complete,
                ts: us(s.start),
                dur: Some(us(s.end) - us(s.start)),
                pid: PID,
                tid: s.cpu,
                scope: None,
                cname: None,
                args: a,
            });
        }
        for (i, (cpu, e)) in tl.events.iter().enumerate() {
            let fatal = tl.fatal == Some(i);
            if tl.is_boundary(i) && !fatal {
                continue;
            }
            let mut a = args([
                ("ev", serde_json::to_value(e.ev).unwrap_or(Value::Null)),
                ("obj", Value::from(e.obj)),
                ("pindex", Value::from(e.pindex)),
                ("arg", Value::from(e.arg)),
            ]);
            let (name, cat, cname) = if fatal {
                a.insert("fatal".into(), Value::Bool(true));
                (
                    format!("FATAL: {}", e.what()),
                    "oracle,fatal",
                    Some("terrible".into()),
                )
            } else {
                (format!("{}", e.what()), instant_cat(e.ev), None)
            };
            ev.push(ChromeEvent {
                name,
                cat: cat.into(),
                ph: Phase::Instant,
                ts: us(e.t),
                dur: None,
                pid: PID,
                tid: *cpu,
                scope: Some(Scope::Thread),
                cname,
                args: a,
            });
        }
        if let Some(w) = tl.window {
            let (ocpu, o) = tl.events[w.opens];
            let (ccpu, c) = tl.events[w.closes];
            ev.push(meta(
                "thread_name",
                WINDOW_TID,
                "name",
                Value::from("race window"),
            ));
            ev.push(meta(
                "thread_sort_index",
                WINDOW_TID,
                "sort_index",
                Value::from(WINDOW_TID),
            ));
            ev.push(ChromeEvent {
                name: tl.window_label.into(),
                cat: "window".into(),
                ph: Phase::Complete,
                ts: us(o.t),
                dur: Some(us(c.t) - us(o.t)),
                pid: PID,
                tid: WINDOW_TID,
                scope: None,
                cname: Some("bad".into()),
                args: args([
                    ("opens", Value::from(format!("cpu {ocpu}: {}", o.what()))),
                    ("closes", Value::from(format!("cpu {ccpu}: {}", c.what()))),
                ]),
            });
        }
        // Metadata first, then in time order; at one time the longer span
        // (the outer one) first, instants after the spans that start there.
        ev.sort_by(|a, b| {
            let key = |e: &ChromeEvent| (e.ph != Phase::Metadata, e.ts, e.dur.is_none());
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0)
                .then(ka.1.total_cmp(&kb.1))
                .then(ka.2.cmp(&kb.2))
                .then(b.dur.unwrap_or(0.0).total_cmp(&a.dur.unwrap_or(0.0)))
        });
        ChromeTrace {
            trace_events: ev,
            display_time_unit: TimeUnit::Ns,
            other_data: BTreeMap::new(),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// Checks a trace document as a viewer reads it: `traceEvents` holds events
/// with `name`, `ph`, `ts`, `pid` and `tid`; on every track the events are
/// in time order, `B`/`E` pairs balance, complete events have `dur` >= 0
/// and nest, instants have a valid scope; every track is named by a
/// `thread_name` record. Returns the track names by tid.
pub fn lint(doc: &Value) -> Result<BTreeMap<u64, String>, String> {
    if let Some(u) = doc.get("displayTimeUnit")
        && u != "ms"
        && u != "ns"
    {
        return Err(format!("displayTimeUnit {u} is neither ms nor ns"));
    }
    let evs = doc["traceEvents"]
        .as_array()
        .ok_or("no traceEvents array")?;
    let mut names = BTreeMap::new();
    // Per track: last ts, open B names, open X ends.
    type Track = (f64, Vec<String>, Vec<f64>);
    let mut tracks: BTreeMap<(u64, u64), Track> = BTreeMap::new();
    for (i, e) in evs.iter().enumerate() {
        let field = |k: &str| e.get(k).ok_or_else(|| format!("event {i} has no {k}: {e}"));
        let name = field("name")?.as_str().ok_or(format!("event {i}: name"))?;
        let ph = field("ph")?.as_str().ok_or(format!("event {i}: ph"))?;
        let ts = field("ts")?.as_f64().ok_or(format!("event {i}: ts"))?;
        let pid = field("pid")?.as_u64().ok_or(format!("event {i}: pid"))?;
        let tid = field("tid")?.as_u64().ok_or(format!("event {i}: tid"))?;
        if ph == "M" {
            if name == "thread_name" {
                let n = e["args"]["name"]
                    .as_str()
                    .ok_or(format!("event {i}: args.name"))?;
                names.insert(tid, n.to_string());
            }
            continue;
        }
        let (last, open_b, open_x) =
            tracks
                .entry((pid, tid))
                .or_insert((f64::MIN, Vec::new(), Vec::new()));
        if ts < *last {
            return Err(format!(
                "event {i} ({name}) at {ts} us is before {last} us on tid {tid}"
            ));
        }
        *last = ts;
        while open_x.last().is_some_and(|&end| end <= ts) {
            open_x.pop();
        }
        match ph {
            "B" => open_b.push(name.to_string()),
            "E" => {
                open_b
                    .pop()
                    .ok_or(format!("event {i}: E without B on tid {tid}"))?;
            }
            "X" => {
                let dur = e["dur"]
                    .as_f64()
                    .ok_or(format!("event {i} ({name}): X without dur"))?;
                if dur < 0.0 {
                    return Err(format!("event {i} ({name}): dur {dur} < 0"));
                }
                let end = ts + dur;
                if let Some(&outer) = open_x.last()
                    && end > outer
                {
                    return Err(format!(
                        "event {i} ({name}) ends at {end} us after its enclosing span ({outer} us) on tid {tid}"
                    ));
                }
                open_x.push(end);
            }
            "i" | "I" => {
                if let Some(s) = e.get("s")
                    && s != "g"
                    && s != "p"
                    && s != "t"
                {
                    return Err(format!("event {i} ({name}): scope {s}"));
                }
            }
            other => return Err(format!("event {i} ({name}): phase {other} not used here")),
        }
    }
    for ((_, tid), (_, open_b, _)) in &tracks {
        if let Some(n) = open_b.last() {
            return Err(format!("span {n} on tid {tid} never ends"));
        }
        if !names.contains_key(tid) {
            return Err(format!("tid {tid} has no thread_name"));
        }
    }
    Ok(names)
}

/// The category of an instant event.
pub fn instant_cat(ev: Ev) -> &'static str {
    match ev {
        Ev::Oracle => "oracle",
        Ev::SplitMove => "split,rename",
        Ev::SplitDiscard | Ev::SplitRestart => "split",
        Ev::AllocBehind => "alloc",
        Ev::GetpagesUnlock | Ev::GetpagesRelock => "lock",
        Ev::ClipBehind | Ev::GetpagesEnter => "getpages",
        Ev::Pageout => "pageout",
        Ev::Collapse | Ev::QuickCollapse | Ev::Bypass => "object,collapse",
        Ev::PlaceholderLeft => "fault",
        Ev::CollapseWait => "fault,collapse",
        Ev::SwapoffStart | Ev::SwapoffDone | Ev::SwapoffDirty => "swapoff",
        Ev::SwapoffUnlock => "swapoff,lock",
        Ev::SwapoffRead => "swapoff,io",
        Ev::ForkStart | Ev::ForkDone | Ev::Exit => "fork",
        Ev::Load | Ev::Store => "access",
        Ev::Delay => "delay",
        Ev::FaultStart | Ev::FaultRetry | Ev::FaultDone => "fault",
        Ev::PbufSleep | Ev::PbufGot => "pbuf",
        Ev::SwapRead | Ev::SwapReadDone => "io",
        Ev::SplitStart | Ev::SplitPipWait | Ev::SplitBusySleep | Ev::SplitDone => "split",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::D15293_WINDOW;
    use crate::timeline::tests::race;

    #[test]
    fn json_has_a_track_per_cpu_spans_instants_and_the_fatal_mark() {
        let t = ChromeTrace::from_traces(&race(), Some(1), "race", &D15293_WINDOW);
        let text = t.to_json().expect("json");
        let v: Value = serde_json::from_str(&text).expect("parses");
        assert_eq!(v["displayTimeUnit"], "ns");
        let evs = v["traceEvents"].as_array().expect("traceEvents");
        let threads: Vec<(u64, &str)> = evs
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
            .map(|e| {
                (
                    e["tid"].as_u64().unwrap(),
                    e["args"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            threads,
            [
                (0, "CPU 0"),
                (1, "CPU 1"),
                (WINDOW_TID as u64, "race window")
            ]
        );
        let fatal: Vec<&Value> = evs.iter().filter(|e| e["args"]["fatal"] == true).collect();
        assert_eq!(fatal.len(), 1);
        assert_eq!(fatal[0]["tid"], 1);
        assert_eq!(fatal[0]["ph"], "i");
        assert_eq!(fatal[0]["s"], "t");
        assert!(
            fatal[0]["name"]
                .as_str()
                .unwrap()
                .starts_with("FATAL: ORACLE")
        );
        // The pbuf sleep: 13 ns to 40 ns, in microseconds.
        let sleep = evs
            .iter()
            .find(|e| e["name"] == "getpbuf sleep")
            .expect("sleep span");
        assert_eq!(
            (sleep["ph"].as_str(), sleep["cat"].as_str()),
            (Some("X"), Some("sleep"))
        );
        assert!((sleep["ts"].as_f64().unwrap() - 0.013).abs() < 1e-9);
        assert!((sleep["dur"].as_f64().unwrap() - 0.027).abs() < 1e-9);
        // Renames and allocations are instants; span boundaries are not.
        for (name, n) in [
            ("split obj 7: moves pindex 0", 2),
            ("getpages allocates obj 7 pindex 0", 1),
            ("getpbuf: pool empty, sleeps", 0),
        ] {
            let c = evs
                .iter()
                .filter(|e| e["name"] == name && e["ph"] == "i")
                .count();
            assert_eq!(c, n, "{name}");
        }
        let w = evs.iter().find(|e| e["cat"] == "window").expect("window");
        assert!((w["ts"].as_f64().unwrap() - 0.012).abs() < 1e-9);
        let names = lint(&v).expect("lint");
        assert_eq!(names.len(), 3);
        // The checker notices what it checks.
        let mut bad = v.clone();
        let first_x = evs.iter().position(|e| e["ph"] == "X").unwrap();
        bad["traceEvents"][first_x]["dur"] = Value::from(-1.0);
        assert!(lint(&bad).unwrap_err().contains("dur"));
        let mut bad = v.clone();
        bad["traceEvents"].as_array_mut().unwrap().reverse();
        assert!(lint(&bad).unwrap_err().contains("before"));
        let mut bad = v.clone();
        bad["traceEvents"][first_x]["ph"] = Value::from("B");
        assert!(lint(&bad).unwrap_err().contains("never ends"));
        // Round trip through the model.
        let back: ChromeTrace = serde_json::from_str(&text).expect("model parses it");
        assert_eq!(back, t);
    }
}
