//! Generators of valid passing consoles: what the kernel prints in
//! `mode=probe`, `mode=tests` (KTAP) and `mode=stress` (progress), with
//! firmware text before Hello, diagnostics and blank lines anywhere, `\r\n`
//! line ends, arbitrary text in every string field, records from any CPU.

use proptest::prelude::*;
use proptest::sample::Index;
use stress::Stats;
use stress::proto::{Frame, Record, Verdict};

use super::{Line, Script};

/// Any string (JSON escapes what a console line could not carry).
pub fn any_text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter)
}

/// Printable text for a diagnostic (no control characters).
pub fn printable() -> impl Strategy<Value = String> {
    "[^\\p{C}]{0,40}"
}

/// Text that firmware might print before Hello: never KTAP, `#`, `@` or blank.
pub fn firmware() -> impl Strategy<Value = String> {
    "[A-Z][a-z]{2,8}( [!-~]{1,10}){0,3}"
}

/// Counters with a few fields set.
pub fn stats() -> impl Strategy<Value = Stats> {
    prop::collection::vec((any::<Index>(), any::<u64>()), 0..6).prop_map(|sets| {
        let mut m = serde_json::Map::new();
        for (i, v) in sets {
            let c = i.get(stress::Counter::ALL);
            m.insert(c.name().into(), v.into());
        }
        serde_json::from_value(serde_json::Value::Object(m)).unwrap_or_default()
    })
}

/// A record that may appear between Ready and Done of a passing boot.
pub fn middle_record() -> impl Strategy<Value = Record> {
    prop_oneof![
        (any::<u64>(), stats()).prop_map(|(ms, stats)| Record::Progress { ms, stats }),
        (any_text(), any::<u64>(), any_text()).prop_map(|(name, value, unit)| Record::Measure {
            name,
            value,
            unit
        }),
    ]
}

/// The kernel's mode, as Hello echoes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Probe,
    Tests,
    Stress,
}

/// One KTAP result line of a passing run: ok, or skipped.
pub fn ktap_result(num: u32) -> impl Strategy<Value = String> {
    (
        "[a-z_][a-z0-9_]{0,15}",
        prop_oneof![
            Just(None),
            printable().prop_map(|t| Some(format!("SKIP {t}"))),
            "[^\\p{C}#]{1,20}".prop_map(Some),
        ],
    )
        .prop_map(move |(name, dir)| stress::ktap::result(true, num, &name, dir.as_deref()))
}

/// A KTAP document of `n` passing results.
pub fn ktap_block(max: u32) -> impl Strategy<Value = Vec<String>> {
    (0..=max).prop_flat_map(|n| {
        let results: Vec<_> = (1..=n).map(ktap_result).collect();
        results.prop_map(move |rs| {
            let mut v = vec![stress::ktap::HEADER.to_string(), stress::ktap::plan(n)];
            v.extend(rs);
            v
        })
    })
}

/// Lines sprinkled into a console without changing what it says.
pub fn filler() -> impl Strategy<Value = Line> {
    prop_oneof![
        3 => printable().prop_map(|t| Line::Diag(format!("# {t}"))),
        1 => "[ \t]{0,3}".prop_map(Line::Blank),
    ]
}

/// A valid console of a passing boot, and its mode.
pub fn valid() -> impl Strategy<Value = (Script, Mode)> {
    let mode = prop_oneof![Just(Mode::Probe), Just(Mode::Tests), Just(Mode::Stress)];
    (
        mode,
        prop::collection::vec(firmware(), 0..2),
        (any_text(), 1u32..=64, any::<u32>(), any_text(), printable()),
        (any::<u64>(), prop::option::of(stats()), any::<u64>()),
        prop::collection::vec(middle_record(), 0..4),
        ktap_block(6),
        prop::collection::vec((any::<Index>(), filler()), 0..6),
        prop::collection::vec(filler(), 0..2),
        prop::collection::vec(any::<u32>(), 24),
        any::<u64>(),
    )
        .prop_map(
            |(
                mode,
                fw,
                hello,
                (done_ms, done_stats, boot_ns),
                middle,
                ktap,
                fill,
                tail,
                cpus,
                crlf_bits,
            )| {
                let (kernel, ncpus, mem_mib, transport, extra) = hello;
                let m = match mode {
                    Mode::Probe => "probe",
                    Mode::Tests => "tests",
                    Mode::Stress => "stress",
                };
                let mut recs = vec![
                    Record::Hello {
                        kernel,
                        cpus: ncpus,
                        mem_mib,
                        transport,
                        cmdline: format!("mode={m} {extra}"),
                    },
                    Record::Ready {
                        cpus: ncpus,
                        boot_ns,
                    },
                ];
                if mode != Mode::Tests {
                    recs.extend(middle);
                }
                let mut lines: Vec<Line> = fw.into_iter().map(Line::Firmware).collect();
                let cpu = |i: usize| cpus[i % cpus.len()] % ncpus;
                for (i, rec) in recs.into_iter().enumerate() {
                    lines.push(Line::Rec(Box::new(Frame {
                        seq: 0,
                        cpu: cpu(i),
                        rec,
                    })));
                }
                if mode == Mode::Tests {
                    lines.extend(ktap.into_iter().map(Line::Ktap));
                }
                // Fillers anywhere after the firmware text (before Hello too).
                let first = lines
                    .iter()
                    .position(Line::is_record)
                    .unwrap_or(lines.len());
                for (at, l) in fill {
                    let span = lines.len() - first + 1;
                    lines.insert(first + at.index(span), l);
                }
                lines.push(Line::Rec(Box::new(Frame {
                    seq: 0,
                    cpu: cpu(99),
                    rec: Record::Done {
                        verdict: Verdict::Pass,
                        ms: done_ms,
                        stats: done_stats,
                    },
                })));
                lines.extend(tail);
                let crlf = (0..lines.len())
                    .map(|i| crlf_bits >> (i % 64) & 1 == 1 && i % 3 == 0)
                    .collect();
                let mut s = Script::new(lines, crlf);
                s.renumber();
                (s, mode)
            },
        )
}
