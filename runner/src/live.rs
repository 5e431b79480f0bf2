//! The live status of a running stress boot on stderr, from its `Progress`
//! records: elapsed time, forks, faults, swap-ins, window hits, and the
//! scenario's cost counters by name (`Scenario::costs`; D15293's
//! wasted/discarded/leaked pages). On a terminal it is one line redrawn in
//! place (`indicatif`); otherwise one plain line per second of run time.
//! A closed or full stderr is ignored: the boot and its verdict go on.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stress::Stats;
use stress::proto::Record;
use stress::stats::Counter;

use crate::console::{ConsoleLine, LineKind};

/// How often a plain (non-terminal) status line is printed, in run time.
const PLAIN_EVERY_MS: u64 = 1000;

/// One status line: `[2.3/5.0 s] forks 12, faults 3456, ..., wasted 3, ...`,
/// ending with the scenario's cost counters.
pub fn status(ms: u64, duration_ms: u64, s: &Stats, costs: &[Counter]) -> String {
    format!(
        "[{:.1}/{:.1} s] forks {}, faults {}, swap-ins {}, window hits {}{}",
        ms as f64 / 1e3,
        duration_ms as f64 / 1e3,
        s.forks,
        s.faults,
        s.swapins,
        s.window_hits,
        cost_list(s, costs)
    )
}

/// `, wasted 3, discarded 2, leaked 1`: each counter by its name (`_` as a
/// space) and value.
pub fn cost_list(s: &Stats, costs: &[Counter]) -> String {
    costs
        .iter()
        .map(|c| format!(", {} {}", c.name().replace('_', " "), s.get(*c)))
        .collect()
}

/// The status display of one boot.
pub struct Live {
    bar: Option<ProgressBar>,
    duration_ms: u64,
    /// Run time of the last plain line printed.
    printed_ms: Option<u64>,
    /// Echo every console line (`--verbose`).
    echo: bool,
    /// The scenario's cost counters.
    costs: &'static [Counter],
}

impl Live {
    /// A display for a run of `duration` showing `costs`; a redrawn line
    /// when stderr is a terminal, plain lines otherwise.
    pub fn new(duration: Duration, echo: bool, costs: &'static [Counter]) -> Self {
        let duration_ms = duration.as_millis() as u64;
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(
                Some(duration_ms.max(1)),
                ProgressDrawTarget::stderr(),
            );
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_message("booting ...");
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Live {
            bar,
            duration_ms,
            printed_ms: None,
            echo,
            costs,
        }
    }

    /// Takes one console line.
    pub fn line(&mut self, l: &ConsoleLine) {
        if self.echo {
            let text = crate::render::console_line(l, false);
            match &self.bar {
                Some(b) => b.println(text),
                None => crate::note!("{text}"),
            }
        }
        let LineKind::Record(f) = &l.kind else {
            return;
        };
        match &f.rec {
            Record::Ready { .. } => self.say("stress running ...".into()),
            Record::Progress { ms, stats } => {
                let text = status(*ms, self.duration_ms, stats, self.costs);
                match &self.bar {
                    Some(b) => {
                        b.set_position(*ms);
                        b.set_message(text);
                    }
                    None => {
                        if self
                            .printed_ms
                            .is_none_or(|p| ms.saturating_sub(p) >= PLAIN_EVERY_MS)
                        {
                            self.printed_ms = Some(*ms);
                            if !self.echo {
                                crate::note!("{text}");
                            }
                        }
                    }
                }
            }
            Record::Failure(_) => self.say("an oracle fired; the kernel is reporting ...".into()),
            Record::Hang { .. } => self.say("the watchdog saw a hang; reporting ...".into()),
            Record::Done { .. } => self.say("done".into()),
            _ => {}
        }
    }

    fn say(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }

    /// Removes the redrawn line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stress::scenarios::{self, ScenarioId};

    #[test]
    fn status_line_shows_the_scenarios_counters() {
        let s = Stats {
            forks: 12,
            faults: 3456,
            swapins: 78,
            window_hits: 9,
            wasted: 3,
            discarded: 2,
            leaked: 1,
            swapoffs: 4,
            swapoff_pageins: 55,
            placeholders_left: 6,
            collapse_waits: 7,
            collapses: 8,
            ..Stats::default()
        };
        let costs = |id: ScenarioId| id.get().costs;
        assert_eq!(
            status(2345, 5000, &s, costs(scenarios::D15293)),
            "[2.3/5.0 s] forks 12, faults 3456, swap-ins 78, window hits 9, wasted 3, discarded 2, leaked 1"
        );
        assert_eq!(
            status(2345, 5000, &s, costs(scenarios::SWAPOFF)),
            "[2.3/5.0 s] forks 12, faults 3456, swap-ins 78, window hits 9, swapoffs 4, swapoff blocks 0, swapoff pageins 55"
        );
        assert_eq!(
            status(2345, 5000, &s, costs(scenarios::COLLAPSE)),
            "[2.3/5.0 s] forks 12, faults 3456, swap-ins 78, window hits 9, placeholders left 6, collapse waits 7, collapses 8"
        );
    }
}
