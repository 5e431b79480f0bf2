//! `--trace-svg`: a failure's interleaving as an SVG swimlane, the picture
//! of `docs/race.md` drawn from a real failure (`plotters`, SVG backend).
//!
//! One lane per CPU that has events, time running down, one row per event
//! in merged order (the order is exact, the spacing is not proportional to
//! time; the time of each row is in the left margin). Beside each lane's
//! events, bars show the spans of [`stress::timeline`]: calls (thin green),
//! locks held (orange), sleeps (grey), swap I/O (blue), nested left to
//! right. The race window (the failing scenario's
//! [`stress::timeline::WindowRule`]) is shaded
//! across all lanes; the oracle's event is red, with a red rule across.
//! Only the rows from a little before the window (or the last
//! [`MAX_ROWS`]) are drawn; a line at the top says how many were left out.
//! Where a CPU's full ring begins (its older events overwritten), a muted
//! line in its lane says so.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use stress::timeline::{SpanCat, Timeline};

/// At most this many rows.
pub const MAX_ROWS: usize = 120;
/// Rows shown before the window opens.
const CONTEXT: usize = 8;

const ROW: i32 = 18;
const LANE: i32 = 400;
const GUTTER: i32 = 110;
const HEAD: i32 = 96;
const FOOT: i32 = 60;
const BAR: i32 = 6;
const FONT: &str = "monospace";

const ORANGE: RGBColor = RGBColor(230, 140, 0);
const GREY: RGBColor = RGBColor(140, 140, 140);
const BLUE: RGBColor = RGBColor(40, 110, 220);
const GREEN: RGBColor = RGBColor(120, 175, 120);
const WINDOW: RGBColor = RGBColor(255, 236, 160);
const FATAL: RGBColor = RGBColor(200, 0, 0);
const MUTED: RGBColor = RGBColor(100, 100, 100);

fn color(c: SpanCat) -> RGBColor {
    match c {
        SpanCat::Lock => ORANGE,
        SpanCat::Sleep => GREY,
        SpanCat::Io => BLUE,
        SpanCat::Call => GREEN,
    }
}

/// A span's label colour: its bar's, darker.
fn ink(c: SpanCat) -> RGBColor {
    let RGBColor(r, g, b) = color(c);
    let dark = |v: u8| (u16::from(v) * 4 / 5) as u8;
    RGBColor(dark(r), dark(g), dark(b))
}

/// The first and last event index drawn.
pub fn rows(tl: &Timeline) -> Option<(usize, usize)> {
    let last = tl.events.len().checked_sub(1)?;
    let from = tl
        .window
        .map_or(0, |w| w.opens.saturating_sub(CONTEXT))
        .max((last + 1).saturating_sub(MAX_ROWS));
    Some((from, last))
}

/// Drawn where a full ring begins.
pub const RING_NOTE: &str = "┄┄ ring starts: this CPU's older events were overwritten ┄┄";

/// The CPUs whose ring was full (it may have overwritten older events),
/// with the index of their first event.
pub fn ring_starts(tl: &Timeline) -> Vec<(u32, usize)> {
    tl.cpus
        .iter()
        .filter(|&&cpu| tl.events.iter().filter(|(c, _)| *c == cpu).count() >= stress::trace::RING)
        .filter_map(|&cpu| Some((cpu, tl.events.iter().position(|(c, _)| *c == cpu)?)))
        .collect()
}

/// The SVG text of the swimlane. `title` heads it; `detail` (one line, cut
/// to fit) goes under it.
pub fn svg(tl: &Timeline, title: &str, detail: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    draw(&mut text, tl, title, detail).map_err(|e| anyhow!("cannot draw the swimlane: {e}"))?;
    Ok(text)
}

/// Writes the swimlane to `path` (atomically).
pub fn write(path: &Path, tl: &Timeline, title: &str, detail: &str) -> anyhow::Result<()> {
    let text = svg(tl, title, detail)?;
    crate::json::write_file_atomic(path, text.as_bytes())
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size as f64).into_font())
}

fn draw(
    out: &mut String,
    tl: &Timeline,
    title: &str,
    detail: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let (from, to) = rows(tl).unwrap_or((0, 0));
    let shown = if tl.events.is_empty() {
        0
    } else {
        to - from + 1
    };
    let lanes = tl.cpus.len().max(1) as i32;
    let width = GUTTER + lanes * LANE + 20;
    let height = HEAD + shown as i32 * ROW + FOOT;
    let root = SVGBackend::with_string(out, (width as u32, height as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let lane_x = |cpu: u32| {
        let i = tl.cpus.iter().position(|c| *c == cpu).unwrap_or(0) as i32;
        GUTTER + i * LANE
    };
    let row_top = |i: usize| HEAD + (i - from) as i32 * ROW;
    let row_mid = |i: usize| row_top(i) + ROW / 2;
    let right = width - 10;

    // Title and detail.
    root.draw(&Text::new(
        title.to_string(),
        (10, 8),
        TextStyle::from((FONT, 20.0, FontStyle::Bold).into_font()),
    ))?;
    let max_chars = ((width - 20) / 8).max(20) as usize;
    let detail: String = if detail.chars().count() > max_chars {
        detail.chars().take(max_chars - 1).chain(['…']).collect()
    } else {
        detail.to_string()
    };
    root.draw(&Text::new(detail, (10, 32), font(14)))?;
    if from > 0 {
        root.draw(&Text::new(
            format!(
                "({from} earlier events not shown; the last {shown} of {})",
                tl.events.len()
            ),
            (10, 50),
            font(13).color(&MUTED),
        ))?;
    }

    // The race window, under everything else.
    if let Some(w) = tl.window
        && w.closes >= from
    {
        let top = row_top(w.opens.max(from));
        let bottom = row_top(w.closes) + ROW;
        root.draw(&Rectangle::new(
            [(GUTTER - 4, top), (right, bottom)],
            WINDOW.filled(),
        ))?;
    }
    // The fatal row.
    if let Some(f) = tl.fatal.filter(|f| *f >= from) {
        root.draw(&Rectangle::new(
            [(0, row_top(f)), (right, row_top(f) + ROW)],
            FATAL.mix(0.12).filled(),
        ))?;
        root.draw(&PathElement::new(
            vec![(0, row_top(f) + ROW), (right, row_top(f) + ROW)],
            FATAL.stroke_width(2),
        ))?;
    }

    // Lane headers and separators.
    for &cpu in &tl.cpus {
        let x = lane_x(cpu);
        let caught = tl.caught_by == Some(cpu);
        let (label, style) = if caught {
            (
                format!("CPU {cpu} (its oracle fired)"),
                TextStyle::from((FONT, 17.0, FontStyle::Bold).into_font()).color(&FATAL),
            )
        } else {
            (
                format!("CPU {cpu}"),
                TextStyle::from((FONT, 17.0, FontStyle::Bold).into_font()),
            )
        };
        root.draw(&Text::new(label, (x + 4, HEAD - 24), style))?;
        root.draw(&PathElement::new(
            vec![(x - 2, HEAD - 4), (x - 2, height - FOOT + 4)],
            BLACK.mix(0.3),
        ))?;
    }
    root.draw(&PathElement::new(
        vec![(GUTTER - 4, HEAD - 4), (right, HEAD - 4)],
        BLACK.mix(0.5),
    ))?;

    // Span bars, clipped to the rows drawn.
    let depth_max = tl.spans.iter().map(|s| s.depth).max().unwrap_or(0) as i32;
    for s in tl.spans.iter().filter(|s| s.last >= from) {
        let x = lane_x(s.cpu) + 4 + s.depth as i32 * (BAR + 2);
        let top = if s.first < from {
            row_top(from)
        } else {
            row_mid(s.first)
        };
        let bottom = row_mid(s.last).max(top + 3);
        let (w, c) = if s.cat == SpanCat::Call {
            (2, color(s.cat))
        } else {
            (BAR, color(s.cat))
        };
        let x0 = x + (BAR - w) / 2;
        root.draw(&Rectangle::new([(x0, top), (x0 + w, bottom)], c.filled()))?;
    }

    // The events.
    let text_x = 4 + (depth_max + 1) * (BAR + 2) + 6;
    for (i, (cpu, e)) in tl.events.iter().enumerate().skip(from) {
        let y = row_top(i) + 2;
        let us = e.t / 1000;
        root.draw(&Text::new(
            format!("{}.{:03} ms", us / 1000, us % 1000),
            (GUTTER - 12, y),
            font(13).color(&MUTED).pos(Pos::new(HPos::Right, VPos::Top)),
        ))?;
        let fatal = tl.fatal == Some(i);
        let edge = tl.window.is_some_and(|w| w.opens == i || w.closes == i);
        let style = if fatal {
            TextStyle::from((FONT, 15.0, FontStyle::Bold).into_font()).color(&FATAL)
        } else if edge {
            TextStyle::from((FONT, 15.0, FontStyle::Bold).into_font())
        } else {
            font(15)
        };
        let what = e.what().to_string();
        let what = if fatal { format!("✖ {what}") } else { what };
        root.draw(&Text::new(what, (lane_x(*cpu) + text_x, y), style))?;
    }

    // Span names, on the first free row of their lane inside the span:
    // locks, sleeps and I/O, and whatever is still open at the end.
    let mut used: std::collections::BTreeSet<(u32, usize)> = tl
        .events
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, (cpu, _))| (*cpu, i))
        .collect();
    // A full ring lost its older events: say so in the row above its first
    // (that lane is empty there), so that a quiet lane is not read as idle.
    for (cpu, first) in ring_starts(tl) {
        if first > from {
            used.insert((cpu, first - 1));
            root.draw(&Text::new(
                RING_NOTE,
                (lane_x(cpu) + 4, row_top(first - 1) + 3),
                TextStyle::from((FONT, 13.0, FontStyle::Italic).into_font()).color(&MUTED),
            ))?;
        }
    }
    let mut named: Vec<&stress::timeline::Span> = tl
        .spans
        .iter()
        .filter(|s| s.cat != SpanCat::Call || s.clipped_end)
        .filter(|s| s.last > from)
        .collect();
    named.sort_by_key(|s| (s.first.max(from), s.depth));
    for s in named {
        let Some(r) = (s.first.max(from) + 1..s.last).find(|r| !used.contains(&(s.cpu, *r))) else {
            continue;
        };
        used.insert((s.cpu, r));
        let label = if s.clipped_end {
            format!("┆ {} (still open at the end)", s.name)
        } else {
            format!("┆ {}", s.name)
        };
        root.draw(&Text::new(
            label,
            (lane_x(s.cpu) + text_x, row_top(r) + 2),
            TextStyle::from((FONT, 15.0, FontStyle::Italic).into_font()).color(&ink(s.cat)),
        ))?;
    }

    // Legend.
    let y = height - FOOT + 14;
    let mut x = 10;
    let mut key = |label: &str, c: RGBColor, w: i32| -> Result<(), Box<dyn std::error::Error>> {
        root.draw(&Rectangle::new([(x, y), (x + w, y + 14)], c.filled()))?;
        root.draw(&Text::new(label.to_string(), (x + w + 6, y), font(14)))?;
        x += w + 14 + 8 * label.chars().count() as i32;
        Ok(())
    };
    key("lock held", ORANGE, BAR)?;
    key("sleep", GREY, BAR)?;
    key("swap I/O", BLUE, BAR)?;
    key("call (vm_fault, getpages, split, fork)", GREEN, 2)?;
    key(tl.window_label, WINDOW, 24)?;
    key("oracle fired", RGBColor(240, 180, 180), 24)?;
    if tl.window.is_none() {
        root.draw(&Text::new(
            "(no race window found in this trace)",
            (10, y + 22),
            font(13).color(&MUTED),
        ))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;
    use stress::timeline::D15293_WINDOW;
    use stress::trace::{CpuTrace, Ev, TraceEvent};

    fn ev(t: u64, ev: Ev, obj: u32) -> TraceEvent {
        TraceEvent {
            t,
            ev,
            obj,
            pindex: 3,
            arg: 0,
        }
    }

    pub fn race() -> Vec<CpuTrace> {
        vec![
            CpuTrace {
                cpu: 0,
                events: vec![
                    ev(10_000, Ev::FaultStart, 0),
                    ev(11_000, Ev::GetpagesEnter, 7),
                    ev(12_000, Ev::GetpagesUnlock, 7),
                    ev(13_000, Ev::PbufSleep, 0),
                    ev(40_000, Ev::PbufGot, 0),
                    ev(41_000, Ev::GetpagesRelock, 7),
                    ev(43_000, Ev::AllocBehind, 7),
                    ev(44_000, Ev::SwapRead, 7),
                    ev(50_000, Ev::SwapReadDone, 7),
                    ev(51_000, Ev::FaultRetry, 0),
                ],
            },
            CpuTrace {
                cpu: 3,
                events: vec![
                    ev(20_000, Ev::ForkStart, 0),
                    ev(21_000, Ev::SplitStart, 7),
                    ev(22_000, Ev::SplitMove, 7),
                    ev(30_000, Ev::SplitBusySleep, 7),
                    ev(55_000, Ev::SplitRestart, 7),
                    ev(56_000, Ev::Oracle, 0),
                ],
            },
        ]
    }

    /// The text of every element of an SVG, after checking that it is
    /// well-formed XML (entity references resolved).
    pub fn texts(svg: &str) -> Vec<String> {
        let mut r = Reader::from_str(svg);
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut depth = 0i32;
        loop {
            match r.read_event().expect("well-formed XML") {
                Event::Start(_) => {
                    depth += 1;
                    cur.clear();
                }
                Event::End(_) => {
                    depth -= 1;
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                }
                Event::Text(t) => cur.push_str(&t.decode().expect("utf-8")),
                Event::GeneralRef(g) => {
                    let name = g.decode().expect("utf-8");
                    let c = quick_xml::escape::resolve_predefined_entity(&name)
                        .expect("a predefined entity");
                    cur.push_str(c);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0, "every element closed");
        out
    }

    #[test]
    fn the_swimlane_names_every_cpu_and_marks_window_and_oracle() {
        let tl = Timeline::new(&race(), Some(3), &D15293_WINDOW);
        let s = svg(
            &tl,
            "forkswap baseline seed 0x1",
            "split found <pindex 3> & more",
        )
        .expect("svg");
        assert!(s.starts_with("<svg"));
        let t = texts(&s);
        for needle in [
            "CPU 0",
            "CPU 3 (its oracle fired)",
            "✖ ORACLE: repopulated",
            "getpages drops obj 7 lock for a pbuf",
            "split obj 7: restart find_least(3)",
            "split found <pindex 3> & more",
            D15293_WINDOW.label,
            "0.012 ms",
        ] {
            assert!(t.iter().any(|x| x == needle), "{needle:?} not in {t:?}");
        }
        // The window is shaded, the fatal row ruled in red.
        assert!(s.contains("fill=\"#FFECA0\""), "window fill");
        assert!(s.contains("stroke=\"#C80000\""), "fatal rule");
        // One bar per non-call span: 2 lock, 1 sleep, 1 I/O on cpu 0; fork
        // map lock, 2 split locks and a busy sleep on cpu 3.
        assert_eq!(s.matches("fill=\"#E68C00\"").count(), 1 + 2 + 1 + 2);
        assert_eq!(s.matches("fill=\"#8C8C8C\"").count(), 1 + 1 + 1);
    }

    #[test]
    fn long_traces_show_the_rows_around_the_window() {
        let mut traces = race();
        let filler: Vec<TraceEvent> = (0..200).map(|i| ev(i, Ev::Store, 0)).collect();
        traces.push(CpuTrace {
            cpu: 1,
            events: filler,
        });
        let tl = Timeline::new(&traces, Some(3), &D15293_WINDOW);
        let w = tl.window.expect("window");
        let (from, to) = rows(&tl).expect("rows");
        assert_eq!((from, to), (w.opens - CONTEXT, tl.events.len() - 1));
        let t = texts(&svg(&tl, "t", "d").expect("svg"));
        assert!(
            t.iter()
                .any(|x| x.starts_with(&format!("({from} earlier events not shown"))),
            "{t:?}"
        );
        // CPU 1's 200 events fill a ring: its start is marked only if drawn.
        assert_eq!(ring_starts(&tl), vec![(1, 0)]);
        assert!(!t.iter().any(|x| x == RING_NOTE));
        let mut late = race();
        late.push(CpuTrace {
            cpu: 1,
            events: (0..48).map(|i| ev(52_000 + i, Ev::Store, 0)).collect(),
        });
        let l = Timeline::new(&late, Some(3), &D15293_WINDOW);
        let first = l.events.iter().position(|(c, _)| *c == 1).unwrap();
        assert_eq!(ring_starts(&l), vec![(1, first)]);
        let t = texts(&svg(&l, "t", "d").expect("svg"));
        assert!(t.iter().any(|x| x == RING_NOTE), "{t:?}");
        // A ring that is not full lost nothing.
        assert!(ring_starts(&Timeline::new(&race(), Some(3), &D15293_WINDOW)).is_empty());
        assert!(t.iter().any(|x| x == "CPU 1"));
        let empty = Timeline::new(&[], None, &D15293_WINDOW);
        assert!(rows(&empty).is_none());
        assert!(
            texts(&svg(&empty, "t", "d").expect("svg"))
                .iter()
                .any(|x| x.contains("no race window"))
        );
    }

    #[test]
    fn the_documented_example_names_every_cpu() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/scenarios/d15293-swimlane.svg"
        );
        let t = texts(&std::fs::read_to_string(path).expect("example"));
        for cpu in ["CPU 0 (its oracle fired)", "CPU 1", "CPU 2", "CPU 3"] {
            assert!(t.iter().any(|x| x == cpu), "{cpu} not in {t:?}");
        }
        assert!(t.iter().any(|x| x == "✖ ORACLE: repopulated"));
    }

    /// Draws the swimlane of a baseline failure caught on host threads
    /// (for looking at the picture while changing it):
    /// `FORKSWAP_SWIMLANE=/tmp/s.svg cargo test -p runner --lib swimlane_of_a_host_run -- --ignored`
    #[test]
    #[ignore = "writes the SVG named by FORKSWAP_SWIMLANE"]
    fn swimlane_of_a_host_run() {
        let path = std::env::var("FORKSWAP_SWIMLANE").expect("set FORKSWAP_SWIMLANE");
        let f = (0..8)
            .find_map(|seed| {
                stress::host::run_stress(
                    stress::scenarios::d15293::BASELINE,
                    seed,
                    4,
                    Some(3000),
                    std::time::Duration::from_secs(20),
                )
                .failure
            })
            .expect("a baseline failure");
        let tl = Timeline::new(&f.traces, Some(f.cpu), &f.scenario.get().trace_window);
        write(
            Path::new(&path),
            &tl,
            &format!("host run: {} on cpu {}", f.kind, f.cpu),
            &f.detail,
        )
        .expect("write");
    }
}
