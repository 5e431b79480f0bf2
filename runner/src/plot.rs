//! `compare --plot`: an SVG strip plot of time to first failure per
//! variant (`plotters`, SVG backend only: no fonts or system libraries).
//! One column per variant; every boot is a mark, spread a little sideways so
//! that marks at the same time stay visible:
//! - red dot: caught by an oracle, at `Failure.ms`;
//! - orange triangle: hang, at the kernel's stall time (capped at the duration);
//! - green cross: clean, drawn at the duration (no failure in the whole run);
//! - hollow grey circle at the duration: clean, but the race window never
//!   opened (0 window hits: proves nothing);
//! - grey cross at 0: infrastructure error (no result);
//! - a black bar: the median time to first failure of the caught boots.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use stress::Variant;

use crate::stress_result::{BootResult, Outcome};
use crate::summary::median;

/// Pixels.
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 640;

/// Where a boot goes on the plot: variant column, ms, outcome.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mark {
    pub column: usize,
    pub x: f64,
    pub ms: f64,
    pub outcome: Outcome,
    /// The boot ran but its race window never opened.
    pub no_window: bool,
}

/// The marks of every boot: caught at its detection time, hangs at their
/// stall time, clean boots at the duration, infra at 0.
pub fn marks(variants: &[Variant], boots: &[BootResult], duration_ms: f64) -> Vec<Mark> {
    let mut out = Vec::new();
    for (column, v) in variants.iter().enumerate() {
        for (j, b) in boots.iter().filter(|b| b.variant == *v).enumerate() {
            let ms = match b.outcome {
                Outcome::Caught => b.failure.as_ref().map_or(duration_ms, |f| f.ms as f64),
                Outcome::Hang => b.hang.as_ref().map_or(duration_ms, |h| h.ms as f64),
                Outcome::Clean => duration_ms,
                Outcome::Infra => 0.0,
            }
            .min(duration_ms);
            // Deterministic spread in [-0.25, 0.25] (golden-ratio sequence).
            let jitter = ((j as f64 * 0.618_034) % 1.0 - 0.5) * 0.5;
            out.push(Mark {
                column,
                x: column as f64 + jitter,
                ms,
                outcome: b.outcome,
                no_window: b.outcome != Outcome::Infra && b.window_hits() == 0,
            });
        }
    }
    out
}

/// The SVG text of the plot.
pub fn svg(variants: &[Variant], boots: &[BootResult], duration_ms: f64) -> anyhow::Result<String> {
    let mut text = String::new();
    draw(&mut text, variants, &[], boots, duration_ms)
        .map_err(|e| anyhow!("cannot draw the plot: {e}"))?;
    Ok(text)
}

/// Writes the plot with a label under every variant's name (the decision
/// of `compare --until-confident`) to `path` (atomically).
pub fn write_labelled(
    path: &Path,
    variants: &[Variant],
    labels: &[String],
    boots: &[BootResult],
    duration_ms: f64,
) -> anyhow::Result<()> {
    let mut text = String::new();
    draw(&mut text, variants, labels, boots, duration_ms)
        .map_err(|e| anyhow!("cannot draw the plot: {e}"))?;
    crate::json::write_file_atomic(path, text.as_bytes())
}

/// Writes the plot to `path` (atomically).
pub fn write(
    path: &Path,
    variants: &[Variant],
    boots: &[BootResult],
    duration_ms: f64,
) -> anyhow::Result<()> {
    let text = svg(variants, boots, duration_ms)?;
    crate::json::write_file_atomic(path, text.as_bytes())
}

fn draw(
    out: &mut String,
    variants: &[Variant],
    labels: &[String],
    boots: &[BootResult],
    duration_ms: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let marks = marks(variants, boots, duration_ms);
    let n = variants.len().max(1);
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_range = -0.5f64..(n as f64 - 0.5);
    // Room above the end of the run for the legend.
    let y_max = (duration_ms * 1.4).max(1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "forkswap compare {}: time to first failure per variant ({} boots, {:.1} s each)",
                variants.first().map_or("", |v| v.scenario().name),
                boots.len(),
                duration_ms / 1e3
            ),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, 0f64..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .light_line_style(WHITE)
        .x_desc("variant")
        .y_desc("time to first failure (ms)")
        .label_style(("sans-serif", 13))
        .draw()?;
    // The duration: where clean boots sit.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, duration_ms), (n as f64 - 0.5, duration_ms)],
            BLACK.mix(0.25),
        )))?
        .label(format!("end of the run ({duration_ms:.0} ms)"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.mix(0.25)));
    let pick = |o: Outcome| marks.iter().filter(move |m| m.outcome == o);
    chart
        .draw_series(pick(Outcome::Caught).map(|m| Circle::new((m.x, m.ms), 4, RED.filled())))?
        .label("caught (Failure.ms)")
        .legend(|(x, y)| Circle::new((x + 8, y), 4, RED.filled()));
    let orange = RGBColor(230, 140, 0);
    chart
        .draw_series(
            pick(Outcome::Hang).map(|m| TriangleMarker::new((m.x, m.ms), 6, orange.filled())),
        )?
        .label("hang (stall time)")
        .legend(move |(x, y)| TriangleMarker::new((x + 8, y), 6, orange.filled()));
    let green = RGBColor(0, 150, 60);
    chart
        .draw_series(
            pick(Outcome::Clean)
                .filter(|m| !m.no_window)
                .map(|m| Cross::new((m.x, m.ms), 5, green.stroke_width(2))),
        )?
        .label("clean (whole run, no failure)")
        .legend(move |(x, y)| Cross::new((x + 8, y), 5, green.stroke_width(2)));
    let grey = BLACK.mix(0.5);
    chart
        .draw_series(
            pick(Outcome::Clean)
                .filter(|m| m.no_window)
                .map(|m| Circle::new((m.x, m.ms), 5, grey.stroke_width(2))),
        )?
        .label("clean, but the race window never opened")
        .legend(move |(x, y)| Circle::new((x + 8, y), 5, grey.stroke_width(2)));
    chart
        .draw_series(
            pick(Outcome::Infra)
                .map(|m| Cross::new((m.x, m.ms), 4, BLACK.mix(0.4).stroke_width(1))),
        )?
        .label("infrastructure error (no result)")
        .legend(|(x, y)| Cross::new((x + 8, y), 4, BLACK.mix(0.4).stroke_width(1)));
    let medians: Vec<(usize, f64)> = (0..n)
        .filter_map(|c| {
            median(
                pick(Outcome::Caught)
                    .filter(|m| m.column == c)
                    .map(|m| m.ms)
                    .collect(),
            )
            .map(|ms| (c, ms))
        })
        .collect();
    chart
        .draw_series(medians.iter().map(|(c, ms)| {
            let c = *c as f64;
            PathElement::new(
                vec![(c - 0.32, *ms), (c + 0.32, *ms)],
                BLACK.stroke_width(2),
            )
        }))?
        .label("median time to first failure")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 13))
        .draw()?;
    // The variant names under their columns (plotters picks its own x
    // key points; these are exact).
    let label =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, v) in variants.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64, 0.0));
        root.draw(&Text::new(v.name(), (px, py + 8), label.clone()))?;
        if let Some(l) = labels.get(i) {
            root.draw(&Text::new(l.as_str(), (px, py + 24), label.clone()))?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress_result::{FailureInfo, HangBy, HangInfo};
    use crate::testkit::result;
    use stress::FailureKind;
    use stress::scenarios::d15293;

    fn boots() -> Vec<BootResult> {
        let mut v = Vec::new();
        for ms in [300, 900, 1200] {
            let mut b = result(d15293::BASELINE, Outcome::Caught, 1);
            b.failure = Some(FailureInfo {
                kind: FailureKind::Repopulated,
                cpu: 1,
                ms,
                detail: String::new(),
            });
            v.push(b);
        }
        v.push(result(d15293::SWAP_PREALLOC, Outcome::Clean, 3));
        let mut h = result(d15293::SPLIT_PIPWAIT, Outcome::Hang, 0);
        h.hang = Some(HangInfo {
            ms: 99_000,
            waits: vec![],
            by: HangBy::Timeout,
        });
        v.push(h);
        v.push(result(d15293::SPLIT_PIPWAIT, Outcome::Infra, 0));
        v
    }

    #[test]
    fn marks_put_each_boot_where_it_belongs() {
        let vs = [
            d15293::BASELINE,
            d15293::SWAP_PREALLOC,
            d15293::SPLIT_PIPWAIT,
        ];
        let m = marks(&vs, &boots(), 5000.0);
        assert_eq!(m.len(), 6);
        assert_eq!(
            m.iter()
                .filter(|m| m.column == 0)
                .map(|m| m.ms)
                .collect::<Vec<_>>(),
            vec![300.0, 900.0, 1200.0]
        );
        assert_eq!(
            (m[3].column, m[3].ms, m[3].outcome),
            (1, 5000.0, Outcome::Clean)
        );
        // A hang past the duration is capped; infra sits at 0.
        assert_eq!((m[4].ms, m[5].ms), (5000.0, 0.0));
        assert!(m.iter().all(|m| (m.x - m.column as f64).abs() <= 0.25));
        assert_ne!(m[0].x, m[1].x, "marks of one column are spread");
    }

    #[test]
    fn decisions_go_under_their_columns() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("p.svg");
        let vs = [
            stress::scenarios::d15293::BASELINE,
            stress::scenarios::d15293::SWAP_PREALLOC,
        ];
        let labels = ["decided caught".to_string(), "decided clean".to_string()];
        write_labelled(&p, &vs, &labels, &boots(), 5000.0).expect("writes");
        let s = std::fs::read_to_string(&p).expect("svg");
        assert!(
            s.contains("decided caught") && s.contains("decided clean"),
            "{s}"
        );
    }

    #[test]
    fn svg_has_every_variant_and_mark() {
        let vs = [
            d15293::BASELINE,
            d15293::SWAP_PREALLOC,
            d15293::SPLIT_PIPWAIT,
        ];
        let s = svg(&vs, &boots(), 5000.0).expect("svg");
        assert!(s.starts_with("<svg"), "{}", &s[..80.min(s.len())]);
        for name in [
            "baseline",
            "swap-prealloc",
            "split-pipwait",
            "time to first failure",
            "caught",
        ] {
            assert!(s.contains(name), "{name} missing");
        }
        // Three red dots in the plot plus one in the legend, and the
        // legend's hollow circle (no clean boot without window hits here).
        assert_eq!(s.matches("<circle").count(), 5, "{s}");
        let mut closed = boots();
        closed.push(result(d15293::SWAP_PREALLOC, Outcome::Clean, 0));
        let m = marks(&vs, &closed, 5000.0);
        assert_eq!(
            m.iter().filter(|m| m.no_window).count(),
            2,
            "the hang and the closed clean boot"
        );
        let s2 = svg(&vs, &closed, 5000.0).expect("svg");
        assert_eq!(s2.matches("<circle").count(), 6);
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("p.svg");
        write(&p, &vs, &boots(), 5000.0).expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), s);
    }
}
