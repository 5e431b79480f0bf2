//! A failure's trace rings as a timeline: every CPU's events merged in time
//! order, the spans they bound (locks held, sleeps, swap I/O, the calls
//! around them), the fatal event, and the race window. Pure data, shared by
//! the Chrome trace export ([`crate::chrome_trace`]) and the runner's SVG
//! swimlane.
//!
//! Spans come from one table, [`SPANS`]: which event kinds open a span and
//! which close it. Per CPU the open spans form a stack (a call nests in
//! another); an event that closes a span closes everything opened above it
//! too, so spans always nest. A span already open when the CPU's ring
//! starts (its closing event is in the ring, its opening one was
//! overwritten) starts at the ring's first event; a span still open when
//! the trace ends (the failure stopped the run) ends at the trace's last
//! event. Both are flagged as clipped.
//!
//! The race window comes from the failing scenario's rule
//! ([`crate::scenarios::Scenario::trace_window`], a [`WindowRule`]: here
//! [`D15293_WINDOW`], [`COLLAPSE_WINDOW`], [`SWAPOFF_WINDOW`]): from the
//! event that opens it to the event that closes it, on another CPU or on
//! the same one ([`Close`]), the opener chosen by a [`Witness`].

use alloc::string::String;
use alloc::vec::Vec;

use crate::trace::{CpuTrace, Ev, TraceEvent, interleave};

/// What a span is, for colour and grouping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpanCat {
    /// A function the events bracket (vm_fault, getpages, split).
    Call,
    /// A lock held (an object lock, the map lock).
    Lock,
    /// A sleep (getpbuf, a busy page, paging in progress).
    Sleep,
    /// Swap I/O in flight.
    Io,
}

impl SpanCat {
    /// The category name in exports (`call`, `lock`, `sleep`, `io`).
    pub const fn name(self) -> &'static str {
        match self {
            SpanCat::Call => "call",
            SpanCat::Lock => "lock",
            SpanCat::Sleep => "sleep",
            SpanCat::Io => "io",
        }
    }
}

/// An event that ends a span, and whether it proves the span was open: when
/// it is the first of its span's events in a CPU's ring, the span started
/// before the ring did (`retro`). `getpbuf`'s `PbufGot` does not prove a
/// sleep (it also ends the fast path), so it is not `retro`. `obj`: the
/// event names the span's object (a span recovered from it is named so).
#[derive(Clone, Copy, Debug)]
pub struct End {
    /// The closing event kind.
    pub ev: Ev,
    /// It closes a span opened before the ring started.
    pub retro: bool,
    /// It names the span's object.
    pub obj: bool,
}

const fn end(ev: Ev) -> End {
    End {
        ev,
        retro: true,
        obj: true,
    }
}

const fn also(ev: Ev) -> End {
    End {
        ev,
        retro: false,
        obj: true,
    }
}

/// `SplitDone` names the new object, not the one split locked.
const SPLIT_DONE: End = End {
    ev: Ev::SplitDone,
    retro: true,
    obj: false,
};

/// One kind of span: its name, category, opening and closing event kinds.
#[derive(Debug)]
pub struct SpanRule {
    /// Short name; `{obj}` is replaced by the opening event's object.
    pub name: &'static str,
    /// Category.
    pub cat: SpanCat,
    /// Event kinds that open it.
    pub begin: &'static [Ev],
    /// Event kinds that close it.
    pub end: &'static [End],
}

/// Every span kind, outermost first (an event that opens several spans
/// opens them in this order, so they nest in it).
pub const SPANS: &[SpanRule] = &[
    SpanRule {
        name: "vmspace_fork (map locked)",
        cat: SpanCat::Lock,
        begin: &[Ev::ForkStart],
        end: &[end(Ev::ForkDone)],
    },
    SpanRule {
        name: "vm_fault",
        cat: SpanCat::Call,
        begin: &[Ev::FaultStart],
        end: &[end(Ev::FaultDone)],
    },
    SpanRule {
        name: "split pip wait",
        cat: SpanCat::Sleep,
        begin: &[Ev::SplitPipWait],
        end: &[also(Ev::SplitStart)],
    },
    SpanRule {
        name: "vm_object_split obj {obj}",
        cat: SpanCat::Call,
        begin: &[Ev::SplitStart],
        end: &[SPLIT_DONE],
    },
    SpanRule {
        name: "obj {obj} locked (split)",
        cat: SpanCat::Lock,
        begin: &[Ev::SplitStart, Ev::SplitRestart],
        end: &[end(Ev::SplitBusySleep), SPLIT_DONE],
    },
    SpanRule {
        name: "split busy sleep",
        cat: SpanCat::Sleep,
        begin: &[Ev::SplitBusySleep],
        end: &[end(Ev::SplitRestart)],
    },
    SpanRule {
        name: "swap_pager_getpages obj {obj}",
        cat: SpanCat::Call,
        begin: &[Ev::GetpagesEnter],
        end: &[
            end(Ev::SwapReadDone),
            also(Ev::FaultRetry),
            also(Ev::FaultDone),
        ],
    },
    SpanRule {
        name: "obj {obj} locked (getpages)",
        cat: SpanCat::Lock,
        begin: &[Ev::GetpagesEnter, Ev::GetpagesRelock],
        end: &[
            end(Ev::GetpagesUnlock),
            also(Ev::PbufSleep),
            also(Ev::PbufGot),
            also(Ev::SwapRead),
            also(Ev::FaultRetry),
            also(Ev::FaultDone),
        ],
    },
    SpanRule {
        name: "getpbuf sleep",
        cat: SpanCat::Sleep,
        begin: &[Ev::PbufSleep],
        end: &[also(Ev::PbufGot)],
    },
    SpanRule {
        name: "swap read obj {obj}",
        cat: SpanCat::Io,
        begin: &[Ev::SwapRead],
        end: &[end(Ev::SwapReadDone)],
    },
];

/// One merged event: its CPU and the event.
pub type Merged = (u32, TraceEvent);

/// A span on one CPU. `first`/`last` index [`Timeline::events`]: the events
/// that opened and closed it, or for a clipped end the CPU's first event /
/// the trace's last event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// The CPU.
    pub cpu: u32,
    /// Index into [`SPANS`].
    pub rule: usize,
    /// Name, with its object filled in.
    pub name: String,
    /// Category.
    pub cat: SpanCat,
    /// Start, ns since the run started.
    pub start: u64,
    /// End, ns since the run started.
    pub end: u64,
    /// Index of the first event.
    pub first: usize,
    /// Index of the last event.
    pub last: usize,
    /// Nesting depth on its CPU (0: outermost).
    pub depth: usize,
    /// It was open when the CPU's ring started.
    pub clipped_start: bool,
    /// It was still open when the trace ended.
    pub clipped_end: bool,
}

/// The race window of a scenario: from an `opens` event to the event that
/// closes it ([`Close`]), at or before the fatal one. Of the windows that
/// close last, the one whose opener the [`Witness`] vouches for is taken,
/// else the one opened last (but see [`Close::SameCpu`]). With `same_object`, opener and closer name the
/// same object (a fatal oracle event names none: it is not compared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowRule {
    /// What the window is, for labels.
    pub label: &'static str,
    /// Event kind that opens the window.
    pub opens: Ev,
    /// What closes it.
    pub closes: Close,
    /// Opener and closer name the same object.
    pub same_object: bool,
    /// Which opener to prefer when there are several.
    pub witness: Option<Witness>,
}

/// What closes a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// The latest event of this kind (at or before the fatal one) on a CPU
    /// other than the opener's (D15293: split restarts while the faulting
    /// CPU is in the window).
    OtherCpu(Ev),
    /// On the opener's CPU: when an oracle fired, only that CPU's openers
    /// count and the window closes at the fatal event (swapoff's check runs
    /// before the read it would have recorded; collapse's fault has retried
    /// and read the lost page); otherwise at the first event of this kind
    /// after the latest opener that has one. Several openers on that CPU
    /// and object with no such event between them are one window, opened
    /// by the first (swapoff drops the lock several times between its
    /// lookup and its reads). The witness is not used.
    SameCpu(Ev),
}

/// Which of several openers did the damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Witness {
    /// The opener's CPU then records `mine` at an (object, pindex) where
    /// the closer's CPU had recorded `theirs` before; failing that, any
    /// `mine` on the window's object (D15293: the fault re-creates by
    /// read-behind a page split had moved).
    Redoes {
        /// The opener CPU's event.
        mine: Ev,
        /// The closer CPU's earlier event at the same page.
        theirs: Ev,
    },
}

/// D15293's window: from getpages dropping the object lock (for a pbuf) to
/// split restarting its page loop, during which the faulting CPU re-creates
/// (read-behind) pages split had already moved.
pub const D15293_WINDOW: WindowRule = WindowRule {
    label: "race window: getpages dropped the object lock .. split restarts",
    opens: Ev::GetpagesUnlock,
    closes: Close::OtherCpu(Ev::SplitRestart),
    same_object: true,
    witness: Some(Witness::Redoes {
        mine: Ev::AllocBehind,
        theirs: Ev::SplitMove,
    }),
};

/// collapse's window (r357091): a fault met a busy page below its top
/// object and left its invalid page there while it sleeps and lingers;
/// until it retries, a collapse can take that page for data (into the
/// object: the backing page is freed with its swap; of the object: the
/// invalid page moves up and the swap block goes). The collapse itself is
/// rarely still in the rings (the linger lasts milliseconds, a ring 48
/// events), so the window is the fault's: from the page left behind to its
/// retry — to the oracle, on the CPU whose retry read the lost page.
pub const COLLAPSE_WINDOW: WindowRule = WindowRule {
    label: "race window: a fault left its invalid page in its top object .. its retry (oracle)",
    opens: Ev::PlaceholderLeft,
    closes: Close::SameCpu(Ev::FaultRetry),
    same_object: false,
    witness: None,
};

/// swapoff's window (r358024): from swapoff first dropping the object lock
/// (busy page, memory, pager) after it looked its blocks up, to the oracle
/// that stops the read of a stale block (in a hang: to its next read).
/// Every unlock of the object since its last read belongs to the window:
/// the blocks were looked up before the first (before r358024 all pages of
/// a run are grabbed, unlocking, before its stretches are read).
pub const SWAPOFF_WINDOW: WindowRule = WindowRule {
    label: "race window: swapoff dropped the object lock .. reads the blocks it looked up",
    opens: Ev::SwapoffUnlock,
    closes: Close::SameCpu(Ev::SwapoffRead),
    same_object: true,
    witness: None,
};

/// A window found in a timeline: indices into [`Timeline::events`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The opening event.
    pub opens: usize,
    /// The closing event.
    pub closes: usize,
}

/// A failure's events, spans, fatal event and race window.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Every CPU's events, merged in time order.
    pub events: Vec<Merged>,
    /// The CPUs that have events, ascending.
    pub cpus: Vec<u32>,
    /// Spans, in the order they opened.
    pub spans: Vec<Span>,
    /// The CPU whose oracle fired.
    pub caught_by: Option<u32>,
    /// Index of the fatal event (the catching CPU's last oracle event).
    pub fatal: Option<usize>,
    /// The race window, if found.
    pub window: Option<Window>,
    /// The label of the window rule used.
    pub window_label: &'static str,
}

impl Timeline {
    /// The timeline of `traces`; `caught_by` is the CPU whose oracle fired.
    pub fn new(traces: &[CpuTrace], caught_by: Option<u32>, rule: &WindowRule) -> Self {
        let events = interleave(traces);
        let mut cpus: Vec<u32> = events.iter().map(|(c, _)| *c).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let fatal = caught_by.and_then(|cpu| {
            events
                .iter()
                .rposition(|(c, e)| *c == cpu && e.ev == Ev::Oracle)
        });
        let spans = spans(&events, &cpus);
        let window = window(&events, fatal, rule);
        Timeline {
            events,
            cpus,
            spans,
            caught_by,
            fatal,
            window,
            window_label: rule.label,
        }
    }

    /// Time of the first event (ns), 0 when empty.
    pub fn start(&self) -> u64 {
        self.events.first().map_or(0, |(_, e)| e.t)
    }

    /// Time of the last event (ns), 0 when empty.
    pub fn end(&self) -> u64 {
        self.events.last().map_or(0, |(_, e)| e.t)
    }

    /// Whether the event at `i` opens or closes a span (its description is
    /// in the span; exports need no separate instant for it).
    pub fn is_boundary(&self, i: usize) -> bool {
        let ev = self.events[i].1.ev;
        ev != Ev::GetpagesUnlock
            && ev != Ev::SplitRestart
            && SPANS
                .iter()
                .any(|r| r.begin.contains(&ev) || r.end.iter().any(|e| e.ev == ev))
    }
}

/// Pairs the events of every CPU into spans (see the module doc).
fn spans(events: &[Merged], cpus: &[u32]) -> Vec<Span> {
    let last = events.len().saturating_sub(1);
    let end_t = events.last().map_or(0, |(_, e)| e.t);
    let mut out: Vec<Span> = Vec::new();
    for &cpu in cpus {
        let mine: Vec<usize> = (0..events.len()).filter(|&i| events[i].0 == cpu).collect();
        let Some(&first) = mine.first() else {
            continue;
        };
        let ring_t = events[first].1.t;
        // Indices into `out` of this CPU's open spans, outermost first.
        let mut stack: Vec<usize> = Vec::new();
        // Rules that had an event of theirs on this CPU already.
        let mut seen = [false; SPANS.len()];
        for &i in &mine {
            let e = events[i].1;
            // Close: the outermost open span this event ends, and all above.
            if let Some(pos) = stack
                .iter()
                .position(|&s| SPANS[out[s].rule].end.iter().any(|x| x.ev == e.ev))
            {
                for s in stack.drain(pos..) {
                    close(&mut out[s], i, e.t);
                }
            }
            // Retro: a span this event proves was open since the ring began.
            for (r, rule) in SPANS.iter().enumerate() {
                let proves = rule.end.iter().find(|x| x.ev == e.ev && x.retro);
                if let Some(x) = proves
                    && !seen[r]
                {
                    // Partial overlap is impossible: what is open now closes here.
                    for s in stack.drain(..) {
                        close(&mut out[s], i, e.t);
                    }
                    out.push(Span {
                        cpu,
                        rule: r,
                        name: name(rule, x.obj.then_some(e.obj)),
                        cat: rule.cat,
                        start: ring_t,
                        end: e.t,
                        first,
                        last: i,
                        depth: 0,
                        clipped_start: true,
                        clipped_end: false,
                    });
                }
            }
            // Open.
            for (r, rule) in SPANS.iter().enumerate() {
                if rule.begin.contains(&e.ev) {
                    if let Some(pos) = stack.iter().position(|&s| out[s].rule == r) {
                        for s in stack.drain(pos..) {
                            close(&mut out[s], i, e.t);
                        }
                    }
                    stack.push(out.len());
                    out.push(Span {
                        cpu,
                        rule: r,
                        name: name(rule, Some(e.obj)),
                        cat: rule.cat,
                        start: e.t,
                        end: e.t,
                        first: i,
                        last: i,
                        depth: stack.len() - 1,
                        clipped_start: false,
                        clipped_end: false,
                    });
                }
            }
            for (r, rule) in SPANS.iter().enumerate() {
                if rule.begin.contains(&e.ev) || rule.end.iter().any(|x| x.ev == e.ev) {
                    seen[r] = true;
                }
            }
        }
        for s in stack {
            close(&mut out[s], last, end_t);
            out[s].clipped_end = true;
        }
    }
    fix_retro_depths(&mut out);
    out
}

fn close(s: &mut Span, i: usize, t: u64) {
    s.last = i;
    s.end = t;
}

fn name(rule: &SpanRule, obj: Option<u32>) -> String {
    let obj = obj.map_or_else(|| String::from("?"), |o| alloc::format!("{o}"));
    rule.name.replace("{obj}", &obj)
}

/// Depth of every span: how many spans of its CPU contain it (retro spans
/// were pushed without a stack, so the depth is computed from the intervals).
fn fix_retro_depths(spans: &mut [Span]) {
    let depths: Vec<usize> = (0..spans.len())
        .map(|i| {
            let s = &spans[i];
            (0..spans.len())
                .filter(|&j| j != i)
                .filter(|&j| {
                    let o = &spans[j];
                    o.cpu == s.cpu
                        && o.first <= s.first
                        && o.last >= s.last
                        && (o.first, core::cmp::Reverse(o.last), j)
                            < (s.first, core::cmp::Reverse(s.last), i)
                })
                .count()
        })
        .collect();
    for (s, d) in spans.iter_mut().zip(depths) {
        s.depth = d;
    }
}

/// Finds `rule`'s window in `events` (see [`WindowRule`]).
pub fn window(events: &[Merged], fatal: Option<usize>, rule: &WindowRule) -> Option<Window> {
    let last = events.len().checked_sub(1)?;
    let limit = fatal.map_or(last, |f| f.min(last));
    match rule.closes {
        Close::OtherCpu(ev) => {
            for closes in (0..=limit).rev().filter(|&i| events[i].1.ev == ev) {
                let (ccpu, cev) = events[closes];
                let openers: Vec<usize> = (0..closes)
                    .rev()
                    .filter(|&i| {
                        let (cpu, e) = events[i];
                        e.ev == rule.opens && cpu != ccpu && (!rule.same_object || e.obj == cev.obj)
                    })
                    .collect();
                if let Some(opens) = pick(events, rule, &openers, closes) {
                    return Some(Window { opens, closes });
                }
            }
            None
        }
        Close::SameCpu(ev) => {
            let caught = fatal.map(|f| events[f].0);
            let closer = |o: usize, i: usize| {
                let ((ocpu, oev), (cpu, e)) = (events[o], events[i]);
                cpu == ocpu && e.ev == ev && (!rule.same_object || e.obj == oev.obj)
            };
            // The latest opener that is closed: by the oracle of its CPU,
            // else by the first `ev` after it.
            let (latest, closes) = (0..limit)
                .rev()
                .filter(|&o| {
                    let (cpu, e) = events[o];
                    e.ev == rule.opens && caught.is_none_or(|c| c == cpu)
                })
                .find_map(|o| {
                    let closes = fatal.or_else(|| (o + 1..=limit).find(|&i| closer(o, i)))?;
                    Some((o, closes))
                })?;
            // Back through the openers of that CPU and object while no `ev`
            // lies between: the window opens at the first.
            let (cpu, obj) = (events[latest].0, events[latest].1.obj);
            let mut opens = latest;
            for o in (0..latest).rev() {
                if closer(latest, o) {
                    break;
                }
                let (c, e) = events[o];
                if c == cpu && e.ev == rule.opens {
                    if e.obj != obj {
                        break;
                    }
                    opens = o;
                }
            }
            Some(Window { opens, closes })
        }
    }
}

/// The opener of a window closing at `closes` among `openers` (latest
/// first): the first the witness vouches for, else the first.
fn pick(events: &[Merged], rule: &WindowRule, openers: &[usize], closes: usize) -> Option<usize> {
    let ccpu = events[closes].0;
    let latest = openers.first().copied();
    let Some(witness) = rule.witness else {
        return latest;
    };
    match witness {
        Witness::Redoes { mine, theirs } => {
            // The opener's `mine` events on the object, before the window closes.
            let mine_of = |o: usize| {
                let (ocpu, oev) = events[o];
                (o..closes).filter(move |&i| {
                    let (cpu, e) = events[i];
                    cpu == ocpu && e.ev == mine && e.obj == oev.obj
                })
            };
            let damaged = |o: &usize| {
                mine_of(*o).any(|i| {
                    let e = events[i].1;
                    events[..i].iter().any(|(cpu, t)| {
                        *cpu == ccpu && t.ev == theirs && (t.obj, t.pindex) == (e.obj, e.pindex)
                    })
                })
            };
            openers
                .iter()
                .copied()
                .find(damaged)
                .or_else(|| {
                    openers
                        .iter()
                        .copied()
                        .find(|&o| mine_of(o).next().is_some())
                })
                .or(latest)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;

    fn ev(t: u64, ev: Ev, obj: u32) -> TraceEvent {
        at(t, ev, obj, 0)
    }

    /// The race of docs/race.md, as the rings record it.
    pub(crate) fn race() -> Vec<CpuTrace> {
        vec![
            CpuTrace {
                cpu: 0,
                events: vec![
                    ev(10, Ev::FaultStart, 0),
                    ev(11, Ev::GetpagesEnter, 7),
                    ev(12, Ev::GetpagesUnlock, 7),
                    ev(13, Ev::PbufSleep, 0),
                    ev(40, Ev::PbufGot, 0),
                    ev(41, Ev::GetpagesRelock, 7),
                    ev(42, Ev::ClipBehind, 7),
                    ev(43, Ev::AllocBehind, 7),
                    ev(44, Ev::SwapRead, 7),
                    ev(50, Ev::SwapReadDone, 7),
                    ev(51, Ev::FaultRetry, 0),
                ],
            },
            CpuTrace {
                cpu: 1,
                events: vec![
                    // The ring starts inside a split: its start was overwritten.
                    ev(5, Ev::SplitMove, 7),
                    ev(20, Ev::SplitDone, 8),
                    ev(21, Ev::SplitStart, 7),
                    ev(22, Ev::SplitMove, 7),
                    ev(30, Ev::SplitBusySleep, 7),
                    ev(55, Ev::SplitRestart, 7),
                    ev(56, Ev::Oracle, 0),
                ],
            },
        ]
    }

    #[test]
    fn spans_pair_nest_and_clip() {
        let t = Timeline::new(&race(), Some(1), &D15293_WINDOW);
        assert_eq!(t.cpus, vec![0, 1]);
        let named = |cpu: u32, n: &str| {
            t.spans
                .iter()
                .filter(|s| s.cpu == cpu && s.name == n)
                .map(|s| (s.start, s.end, s.clipped_start, s.clipped_end))
                .collect::<Vec<_>>()
        };
        assert_eq!(named(0, "getpbuf sleep"), vec![(13, 40, false, false)]);
        assert_eq!(
            named(0, "obj 7 locked (getpages)"),
            vec![(11, 12, false, false), (41, 44, false, false)]
        );
        assert_eq!(named(0, "swap read obj 7"), vec![(44, 50, false, false)]);
        // FaultRetry ends getpages; the fault is still open at the end.
        assert_eq!(
            named(0, "swap_pager_getpages obj 7"),
            vec![(11, 50, false, false)]
        );
        assert_eq!(named(0, "vm_fault"), vec![(10, 56, false, true)]);
        // The split whose start the ring lost starts at the ring's start.
        assert_eq!(
            named(1, "vm_object_split obj ?"),
            vec![(5, 20, true, false)]
        );
        assert_eq!(named(1, "obj ? locked (split)"), vec![(5, 20, true, false)]);
        assert_eq!(
            named(1, "obj 7 locked (split)"),
            vec![(21, 30, false, false), (55, 56, false, true)]
        );
        assert_eq!(named(1, "split busy sleep"), vec![(30, 55, false, false)]);
        // Nesting: every span lies within each span of its CPU it overlaps.
        for a in &t.spans {
            for b in &t.spans {
                if a.cpu == b.cpu && a.start < b.end && b.start < a.end {
                    let nested = (a.start <= b.start && b.end <= a.end)
                        || (b.start <= a.start && a.end <= b.end);
                    assert!(nested, "{a:?} overlaps {b:?}");
                }
            }
        }
        let fault = t.spans.iter().find(|s| s.name == "vm_fault").unwrap();
        let sleep = t.spans.iter().find(|s| s.name == "getpbuf sleep").unwrap();
        assert!(sleep.depth > fault.depth);
    }

    #[test]
    fn the_window_runs_from_the_unlock_to_the_restart() {
        let t = Timeline::new(&race(), Some(1), &D15293_WINDOW);
        let w = t.window.expect("window");
        assert_eq!(t.events[w.opens].1.ev, Ev::GetpagesUnlock);
        assert_eq!(t.events[w.opens].1.t, 12);
        assert_eq!(t.events[w.closes].1.ev, Ev::SplitRestart);
        assert_eq!(t.events[t.fatal.unwrap()].1.ev, Ev::Oracle);
        // A later unlock on another CPU that re-creates no moved page is
        // not the window's opener.
        let mut decoy = race();
        decoy.push(CpuTrace {
            cpu: 2,
            events: vec![
                ev(25, Ev::GetpagesUnlock, 7),
                TraceEvent {
                    pindex: 9,
                    ..ev(45, Ev::AllocBehind, 7)
                },
            ],
        });
        let d = Timeline::new(&decoy, Some(1), &D15293_WINDOW);
        assert_eq!(d.events[d.window.unwrap().opens].1.t, 12);
        // No unlock of that object on another CPU: no window.
        let mut other = race();
        other[0].events[2].obj = 9;
        assert_eq!(Timeline::new(&other, Some(1), &D15293_WINDOW).window, None);
        assert_eq!(Timeline::new(&[], None, &D15293_WINDOW).window, None);
    }

    fn at(t: u64, ev: Ev, obj: u32, pindex: u32) -> TraceEvent {
        TraceEvent {
            t,
            ev,
            obj,
            pindex,
            arg: 0,
        }
    }

    /// r357091's race (docs/scenarios/collapse.md): CPU 2's fault leaves
    /// its invalid page at obj 9 pindex 10 and lingers; CPU 3's exit
    /// collapses obj 5 into obj 9; CPU 2's retry reads zeros.
    pub(crate) fn collapse_race() -> Vec<CpuTrace> {
        vec![
            CpuTrace {
                cpu: 1,
                events: vec![
                    at(10, Ev::FaultStart, 0, 11),
                    at(11, Ev::GetpagesEnter, 5, 11),
                    at(12, Ev::SwapRead, 5, 10),
                    at(40, Ev::SwapReadDone, 5, 10),
                    at(41, Ev::FaultDone, 9, 11),
                ],
            },
            CpuTrace {
                cpu: 2,
                events: vec![
                    at(15, Ev::FaultStart, 0, 10),
                    at(20, Ev::PlaceholderLeft, 9, 10),
                    at(30, Ev::Delay, 0, 0),
                    at(60, Ev::FaultRetry, 0, 10),
                    at(61, Ev::FaultDone, 9, 10),
                    at(62, Ev::Load, 0, 10),
                    at(63, Ev::Oracle, 0, 0),
                ],
            },
            CpuTrace {
                cpu: 3,
                events: vec![at(25, Ev::Exit, 0, 0), at(50, Ev::Collapse, 9, 5)],
            },
        ]
    }

    #[test]
    fn the_collapse_window_runs_from_the_placeholder_to_the_retry() {
        let t = Timeline::new(&collapse_race(), Some(2), &COLLAPSE_WINDOW);
        let w = t.window.expect("window");
        assert_eq!(t.events[w.opens], (2, at(20, Ev::PlaceholderLeft, 9, 10)));
        assert_eq!(Some(w.closes), t.fatal);
        assert_eq!(t.window_label, COLLAPSE_WINDOW.label);
        // Decoys: a later placeholder left by a fault on a CPU whose oracle
        // did not fire (still lingering), and an earlier one of the
        // catching CPU that had retried already.
        let mut decoy = collapse_race();
        decoy[0].events.push(at(42, Ev::PlaceholderLeft, 9, 12));
        decoy[1].events.insert(0, at(2, Ev::PlaceholderLeft, 14, 3));
        decoy[1].events.insert(1, at(4, Ev::FaultRetry, 0, 3));
        let d = Timeline::new(&decoy, Some(2), &COLLAPSE_WINDOW);
        let w = d.window.expect("window");
        assert_eq!((d.events[w.opens].1.t, d.events[w.closes].1.t), (20, 63));
        // Caught on the collapsing CPU (the scan's own oracle): it left no
        // page, so no window.
        let mut scan = collapse_race();
        scan[2].events.push(at(64, Ev::Oracle, 0, 0));
        assert_eq!(Timeline::new(&scan, Some(3), &COLLAPSE_WINDOW).window, None);
        // A hang (no oracle): the latest placeholder that was retried, to
        // its retry.
        let h = Timeline::new(&decoy, None, &COLLAPSE_WINDOW);
        let w = h.window.expect("window");
        assert_eq!((h.events[w.opens].1.t, h.events[w.closes].1.t), (20, 60));
        // No placeholder: no window.
        let mut none = collapse_race();
        none[1].events.remove(1);
        assert_eq!(Timeline::new(&none, Some(2), &COLLAPSE_WINDOW).window, None);
        // Each rule finds only its own race.
        assert_eq!(
            Timeline::new(&collapse_race(), Some(2), &D15293_WINDOW).window,
            None
        );
        assert_eq!(
            Timeline::new(&race(), Some(1), &COLLAPSE_WINDOW).window,
            None
        );
        assert_eq!(
            Timeline::new(&race(), Some(1), &SWAPOFF_WINDOW).window,
            None
        );
    }

    /// r358024's race (docs/scenarios/swapoff.md): swapoff (CPU 3) read a
    /// run of obj 3 before (pindex 0), then sleeps on busy page 4 of obj 3
    /// with the lock dropped; CPU 2 stores to page 7 and pages it out to a
    /// new block; swapoff wakes, sleeps once more on page 5, then reads
    /// page 7's old block: the oracle.
    pub(crate) fn swapoff_race() -> Vec<CpuTrace> {
        vec![
            CpuTrace {
                cpu: 0,
                events: vec![
                    at(10, Ev::FaultStart, 0, 4),
                    at(11, Ev::GetpagesEnter, 3, 4),
                    at(12, Ev::GetpagesUnlock, 3, 4),
                    at(13, Ev::PbufSleep, 0, 0),
                    at(40, Ev::PbufGot, 0, 0),
                    at(41, Ev::GetpagesRelock, 3, 4),
                    at(42, Ev::SwapRead, 3, 4),
                    at(45, Ev::SwapReadDone, 3, 4),
                    at(46, Ev::FaultDone, 3, 4),
                ],
            },
            CpuTrace {
                cpu: 2,
                events: vec![
                    at(22, Ev::FaultStart, 0, 7),
                    at(25, Ev::FaultDone, 3, 7),
                    at(26, Ev::Store, 0, 7),
                    at(30, Ev::Pageout, 3, 7),
                ],
            },
            CpuTrace {
                cpu: 3,
                events: vec![
                    at(5, Ev::SwapoffStart, 0, 0),
                    at(6, Ev::SwapoffUnlock, 3, 0),
                    at(7, Ev::SwapoffRead, 3, 0),
                    at(8, Ev::SwapoffDirty, 3, 0),
                    at(20, Ev::SwapoffUnlock, 3, 4),
                    at(50, Ev::SwapoffUnlock, 3, 5),
                    at(55, Ev::Oracle, 0, 0),
                ],
            },
        ]
    }

    #[test]
    fn the_swapoff_window_runs_from_the_first_unlock_to_the_stopped_read() {
        let t = Timeline::new(&swapoff_race(), Some(3), &SWAPOFF_WINDOW);
        let w = t.window.expect("window");
        // Not the later unlock (page 5): the blocks were looked up before
        // the first; not the one before the earlier read either.
        assert_eq!(t.events[w.opens], (3, at(20, Ev::SwapoffUnlock, 3, 4)));
        assert_eq!(Some(w.closes), t.fatal);
        // A stretch read before the failing one does not end the window.
        let mut stretch = swapoff_race();
        stretch[2].events.insert(6, at(52, Ev::SwapoffRead, 3, 4));
        let st = Timeline::new(&stretch, Some(3), &SWAPOFF_WINDOW);
        let w = st.window.expect("window");
        assert_eq!((st.events[w.opens].1.t, Some(w.closes)), (20, st.fatal));
        // An unlock of another object in between starts a new window.
        let mut moved = swapoff_race();
        moved[2].events[5].obj = 8;
        let m = Timeline::new(&moved, Some(3), &SWAPOFF_WINDOW);
        assert_eq!(m.events[m.window.unwrap().opens].1.t, 50);
        // A hang (no oracle): the window needs swapoff's own read of obj 3.
        let h = Timeline::new(&swapoff_race(), None, &SWAPOFF_WINDOW);
        let w = h.window.expect("the earlier read's window");
        assert_eq!((h.events[w.opens].1.t, h.events[w.closes].1.t), (6, 7));
        let mut read = swapoff_race();
        read[2].events[6] = at(55, Ev::SwapoffRead, 3, 6);
        let r = Timeline::new(&read, None, &SWAPOFF_WINDOW);
        let w = r.window.expect("window");
        assert_eq!(
            (r.events[w.opens].1.t, r.events[w.closes].1.ev),
            (20, Ev::SwapoffRead)
        );
        // The oracle fired on another CPU: not swapoff's window.
        let mut elsewhere = swapoff_race();
        elsewhere[2].events.pop();
        elsewhere[1].events.push(at(56, Ev::Oracle, 0, 0));
        let e = Timeline::new(&elsewhere, Some(2), &SWAPOFF_WINDOW);
        assert!(e.fatal.is_some());
        assert_eq!(e.window, None);
        assert_eq!(
            Timeline::new(&swapoff_race(), Some(3), &COLLAPSE_WINDOW).window,
            None
        );
        assert_eq!(
            Timeline::new(&swapoff_race(), Some(3), &D15293_WINDOW).window,
            None
        );
    }
}
