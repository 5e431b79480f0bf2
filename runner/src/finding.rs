//! A finding told to a kernel developer: what an oracle (or the watchdog)
//! saw, the interleaving that led to it — every CPU's last trace events
//! merged in time order with [`stress::trace::interleave`], one event per
//! line with its CPU, the CPU that caught it marked — and the command that
//! runs the same seed again.

use std::fmt::Write as _;

use stress::trace::{CpuTrace, RING, interleave};

/// How the CPU that caught the failure is marked.
pub const MARK: &str = "▶";

/// Options for rendering an interleaving.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Make the marked CPU's lines bold (ANSI), for a terminal.
    pub bold: bool,
    /// Show only the last this many events (0: all).
    pub last: usize,
}

/// The interleaving of `traces`, one event per line:
/// `▶ cpu2      12.345ms split obj 7: pindex 3 busy, sleeps`.
/// `marked` is the CPU whose oracle fired (if any). When a CPU's ring had
/// wrapped, events before its oldest kept one are incomplete for the other
/// CPUs' view; a rule line shows where every CPU's record is complete.
pub fn interleaving(traces: &[CpuTrace], marked: Option<u32>, style: Style) -> String {
    let events = interleave(traces);
    let mut s = String::new();
    if events.is_empty() {
        s.push_str("    (no trace events were reported)\n");
        return s;
    }
    // The earliest time from which no CPU's events were overwritten.
    let complete_from = traces
        .iter()
        .filter(|t| t.events.len() >= RING)
        .filter_map(|t| t.events.first().map(|e| e.t))
        .max();
    let skip = if style.last > 0 {
        events.len().saturating_sub(style.last)
    } else {
        0
    };
    if skip > 0 {
        let _ = writeln!(
            s,
            "    ({skip} earlier events not shown: the last {} of {})",
            events.len() - skip,
            events.len()
        );
    }
    let mut ruled = false;
    for (i, (cpu, ev)) in events.iter().enumerate().skip(skip) {
        if let Some(from) = complete_from
            && !ruled
            && ev.t >= from
        {
            ruled = true;
            if i > skip {
                let _ = writeln!(
                    s,
                    "    ---- from here on every CPU's events are complete (earlier ones of some CPUs were overwritten) ----"
                );
            }
        }
        let hit = Some(*cpu) == marked;
        let mark = if hit { MARK } else { " " };
        let line = format!("  {mark} cpu{cpu:<3}{ev}");
        if hit && style.bold {
            let _ = writeln!(s, "\x1b[1m{line}\x1b[0m");
        } else {
            let _ = writeln!(s, "{line}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use stress::trace::{Ev, TraceEvent};

    fn ev(t_us: u64, ev: Ev, pindex: u32) -> TraceEvent {
        TraceEvent {
            t: t_us * 1000,
            ev,
            obj: 7,
            pindex,
            arg: 0,
        }
    }

    #[test]
    fn events_are_merged_in_time_order_and_the_catcher_is_marked() {
        let traces = vec![
            CpuTrace {
                cpu: 0,
                events: vec![ev(10, Ev::GetpagesUnlock, 5), ev(40, Ev::AllocBehind, 3)],
            },
            CpuTrace {
                cpu: 1,
                events: vec![ev(20, Ev::SplitMove, 3), ev(30, Ev::SplitBusySleep, 5)],
            },
        ];
        let text = interleaving(&traces, Some(1), Style::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("    cpu0") && lines[0].contains("getpages drops obj 7"));
        assert!(lines[1].starts_with(&format!("  {MARK} cpu1")), "{text}");
        assert!(lines[1].contains("moves pindex 3"), "{text}");
        assert!(lines[2].contains("pindex 5 busy, sleeps"), "{text}");
        assert!(
            lines[3].contains("0.040ms getpages allocates obj 7 pindex 3"),
            "{text}"
        );
        assert!(!text.contains("complete"), "no ring wrapped: {text}");
        assert!(!text.contains('\x1b'));
        let bold = interleaving(
            &traces,
            Some(1),
            Style {
                bold: true,
                last: 0,
            },
        );
        assert_eq!(bold.matches("\x1b[1m").count(), 2, "{bold}");
        let tail = interleaving(
            &traces,
            Some(1),
            Style {
                bold: false,
                last: 1,
            },
        );
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), 2, "{tail}");
        assert!(
            lines[0].contains("3 earlier events not shown: the last 1 of 4"),
            "{tail}"
        );
        assert!(lines[1].contains("allocates obj 7 pindex 3"), "{tail}");
    }

    #[test]
    fn a_wrapped_ring_gets_a_rule_where_the_record_is_complete() {
        let full: Vec<TraceEvent> = (0..RING as u64)
            .map(|i| ev(100 + i, Ev::Store, 1))
            .collect();
        let traces = vec![
            CpuTrace {
                cpu: 0,
                events: vec![ev(5, Ev::ForkStart, 0), ev(500, Ev::ForkDone, 0)],
            },
            CpuTrace {
                cpu: 1,
                events: full,
            },
        ];
        let text = interleaving(&traces, None, Style::default());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("fork image"), "{text}");
        assert!(
            lines[1].contains("every CPU's events are complete"),
            "{text}"
        );
        assert_eq!(lines.len(), RING + 3);
        assert_eq!(interleaving(&[], None, Style::default()).lines().count(), 1);
    }
}
