//! Ways to damage a valid passing console, each of which must keep it from
//! passing: a crash cuts it, CPUs splice or interleave their lines, junk
//! gets in, records are lost, repeated, reordered or renumbered, KTAP
//! results go missing, or the console reports a failure after all.

use proptest::prelude::*;
use proptest::sample::Index;
use stress::proto::{Record, Verdict};
use stress::scenarios::d15293;
use stress::{Failure, FailureKind};

use super::valid::Mode;
use super::{Line, Script};

/// A record that must fail a boot wherever it appears.
#[derive(Clone, Debug)]
pub enum Bad {
    Failure(FailureKind),
    Panic(String),
    Hang(u64),
}

/// One way to damage a console.
#[derive(Clone, Debug)]
pub enum Damage {
    /// The console ends at a byte before the end of the Done line.
    Cut(Index),
    DropRecord(Index),
    /// A record line printed twice (the copy at a second place).
    DupRecord(Index, Index),
    SwapRecords(Index, Index),
    /// A record renumbered to another seq.
    Reseq(Index, u64),
    DropKtap(Index),
    DupKtap(Index, Index),
    SwapKtap(Index, Index),
    /// Every KTAP line of a `mode=tests` console lost.
    DropAllKtap,
    /// A KTAP result that failed.
    FailKtap(Index),
    /// The kernel's Done says fail.
    DoneFail,
    /// A Failure, Panic or Hang record among the others.
    InsertBad(Index, Bad),
    /// Another line (with its newline) written into the middle of a record.
    Splice(Index, Index, Index),
    /// Another line's bytes interleaved byte by byte inside a record.
    Interleave(Index, Index, Vec<Index>),
    /// Bytes with at least one control character (not tab, CR or LF) or
    /// invalid UTF-8, anywhere.
    BinaryJunk(Index, Vec<u8>),
    /// Printable text inside a record line.
    JunkInRecord(Index, Index, String),
    /// A line of text outside the protocol after Hello.
    JunkLine(Index, String),
    /// One byte of a record line changed.
    FlipByte(Index, Index, u8),
}

/// A byte that is always "binary" on a console line: a C0 control other
/// than tab, LF and CR, DEL, or a byte that never occurs in UTF-8.
fn binary_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        0u8..=8,
        Just(0x0b),
        Just(0x0c),
        0x0eu8..=0x1f,
        Just(0x7f),
        Just(0xc0),
        Just(0xc1),
        0xf5u8..=0xff
    ]
}

fn bad() -> impl Strategy<Value = Bad> {
    prop_oneof![
        any::<Index>().prop_map(|i| Bad::Failure(*i.get(&FailureKind::ALL))),
        super::valid::any_text().prop_map(Bad::Panic),
        any::<u64>().prop_map(Bad::Hang),
    ]
}

/// Text that is no protocol line (not blank, `#`, `@` or KTAP).
fn junk_line() -> impl Strategy<Value = String> {
    "[^\\p{C}#@\\s][^\\p{C}]{0,30}".prop_filter("a KTAP line", |s| stress::ktap::parse(s).is_none())
}

pub fn damage() -> impl Strategy<Value = Damage> {
    let i = || any::<Index>();
    prop_oneof![
        4 => i().prop_map(Damage::Cut),
        2 => i().prop_map(Damage::DropRecord),
        2 => (i(), i()).prop_map(|(a, b)| Damage::DupRecord(a, b)),
        2 => (i(), i()).prop_map(|(a, b)| Damage::SwapRecords(a, b)),
        2 => (i(), any::<u64>()).prop_map(|(a, s)| Damage::Reseq(a, s)),
        2 => i().prop_map(Damage::DropKtap),
        1 => (i(), i()).prop_map(|(a, b)| Damage::DupKtap(a, b)),
        2 => (i(), i()).prop_map(|(a, b)| Damage::SwapKtap(a, b)),
        1 => Just(Damage::DropAllKtap),
        1 => i().prop_map(Damage::FailKtap),
        1 => Just(Damage::DoneFail),
        2 => (i(), bad()).prop_map(|(a, b)| Damage::InsertBad(a, b)),
        3 => (i(), i(), i()).prop_map(|(a, b, c)| Damage::Splice(a, b, c)),
        3 => (i(), i(), prop::collection::vec(i(), 1..8))
            .prop_map(|(a, b, c)| Damage::Interleave(a, b, c)),
        3 => (i(), prop::collection::vec(any::<u8>(), 0..8), binary_byte(), i()).prop_map(
            |(at, mut junk, b, pos)| {
                let p = pos.index(junk.len() + 1);
                junk.insert(p, b);
                Damage::BinaryJunk(at, junk)
            }
        ),
        2 => (i(), i(), "[^\\p{C}]{1,12}").prop_map(|(a, b, s)| Damage::JunkInRecord(a, b, s)),
        2 => (i(), junk_line()).prop_map(|(a, s)| Damage::JunkLine(a, s)),
        2 => (i(), i(), 1u8..=255).prop_map(|(a, b, x)| Damage::FlipByte(a, b, x)),
    ]
}

/// Replaces record line `at` (an index into `s.lines`) by raw bytes.
fn set_raw(s: &mut Script, at: usize, bytes: Vec<u8>) {
    s.lines[at] = Line::Raw(bytes);
}

fn pick(v: &[usize], i: &Index) -> usize {
    v[i.index(v.len())]
}

/// Two different elements of `v` (which has at least two).
fn pick_two(v: &[usize], a: &Index, b: &Index) -> (usize, usize) {
    let x = a.index(v.len());
    let y = (x + 1 + b.index(v.len() - 1)) % v.len();
    (v[x], v[y])
}

/// Applies a damage; the damaged console's bytes. A damage that needs
/// something the console lacks (KTAP lines) falls back to a related one.
pub fn apply(orig: &Script, mode: Mode, d: &Damage) -> Vec<u8> {
    let mut s = orig.clone();
    let recs = s.records();
    let ktap = s.ktap();
    let done = s.done().expect("a valid console has Done");
    let hello = s.hello().expect("a valid console has Hello");
    match d {
        Damage::Cut(i) => {
            let (bytes, spans) = s.bytes_and_spans();
            let end = if done + 1 < spans.len() {
                spans[done + 1].start
            } else {
                bytes.len()
            };
            return bytes[..i.index(end)].to_vec();
        }
        Damage::DropRecord(i) => {
            s.remove(pick(&recs, i));
        }
        Damage::DupRecord(i, at) => {
            let l = s.lines[pick(&recs, i)].clone();
            let at = at.index(s.lines.len() + 1);
            s.insert(at, l);
        }
        Damage::SwapRecords(a, b) => {
            let (x, y) = pick_two(&recs, a, b);
            s.lines.swap(x, y);
        }
        Damage::Reseq(i, seq) => {
            if let Line::Rec(f) = &mut s.lines[pick(&recs, i)] {
                f.seq = if *seq == f.seq {
                    seq.wrapping_add(1)
                } else {
                    *seq
                };
            }
        }
        Damage::DropKtap(i) if !ktap.is_empty() => {
            s.remove(pick(&ktap, i));
        }
        Damage::DupKtap(i, at) if !ktap.is_empty() => {
            let l = s.lines[pick(&ktap, i)].clone();
            let at = at.index(s.lines.len() + 1);
            s.insert(at, l);
        }
        Damage::SwapKtap(a, b) if ktap.len() >= 2 => {
            let (x, y) = pick_two(&ktap, a, b);
            s.lines.swap(x, y);
        }
        Damage::DropKtap(i) | Damage::DupKtap(i, _) | Damage::SwapKtap(i, _) => {
            s.remove(pick(&recs, i));
        }
        Damage::DropAllKtap if mode == Mode::Tests => {
            for k in ktap.into_iter().rev() {
                s.remove(k);
            }
        }
        Damage::FailKtap(i) => {
            let results: Vec<usize> = ktap
                .iter()
                .copied()
                .filter(|&k| matches!(&s.lines[k], Line::Ktap(t) if t.starts_with("ok ")))
                .collect();
            if results.is_empty() {
                return apply(orig, mode, &Damage::DoneFail);
            }
            let k = pick(&results, i);
            if let Line::Ktap(t) = &s.lines[k]
                && let Some(stress::ktap::KtapLine::Result { num, desc, .. }) =
                    stress::ktap::parse(t)
            {
                let line = stress::ktap::result(false, num, desc, Some("failed"));
                s.lines[k] = Line::Ktap(line);
            }
        }
        Damage::DropAllKtap | Damage::DoneFail => {
            if let Line::Rec(f) = &mut s.lines[done]
                && let Record::Done { verdict, .. } = &mut f.rec
            {
                *verdict = Verdict::Fail;
            }
        }
        Damage::InsertBad(at, b) => {
            let rec = match b {
                Bad::Failure(kind) => Record::Failure(Failure {
                    kind: *kind,
                    seed: 1,
                    scenario: stress::ScenarioId::DEFAULT,
                    variant: d15293::BASELINE,
                    cpu: 0,
                    ms: 5,
                    detail: "fuzz".into(),
                    traces: Vec::new(),
                }),
                Bad::Panic(message) => Record::Panic {
                    cpu: 0,
                    message: message.clone(),
                    exception: None,
                },
                Bad::Hang(ms) => Record::Hang {
                    ms: *ms,
                    waits: Vec::new(),
                    traces: Vec::new(),
                },
            };
            // Anywhere after Hello, up to and including just before Done.
            let pos = hello + 1 + at.index(done - hello);
            s.insert(
                pos,
                Line::Rec(Box::new(stress::proto::Frame {
                    seq: 0,
                    cpu: 0,
                    rec,
                })),
            );
            s.renumber();
        }
        Damage::Splice(a, b, off) => {
            let x = pick(&recs, a);
            let line = s.lines[x].bytes();
            let other = s.lines[b.index(s.lines.len())].bytes();
            let k = 1 + off.index(line.len() - 1);
            let mut v = line[..k].to_vec();
            v.extend(other);
            v.push(b'\n');
            v.extend(&line[k..]);
            set_raw(&mut s, x, v);
        }
        Damage::Interleave(a, b, offs) => {
            let x = pick(&recs, a);
            let line = s.lines[x].bytes();
            let mut other = s.lines[b.index(s.lines.len())].bytes();
            other.push(b'\n');
            let mut at: Vec<usize> = (0..other.len())
                .map(|n| 1 + offs[n % offs.len()].index(line.len() - 1))
                .collect();
            at.sort_unstable();
            let mut v = Vec::with_capacity(line.len() + other.len());
            let mut o = 0;
            for (k, byte) in line.iter().enumerate() {
                while o < other.len() && at[o] == k {
                    v.push(other[o]);
                    o += 1;
                }
                v.push(*byte);
            }
            v.extend(&other[o..]);
            set_raw(&mut s, x, v);
        }
        Damage::BinaryJunk(at, junk) => {
            let mut bytes = s.bytes();
            let p = at.index(bytes.len() + 1);
            bytes.splice(p..p, junk.iter().copied());
            return bytes;
        }
        Damage::JunkInRecord(a, off, text) => {
            let x = pick(&recs, a);
            let mut line = s.lines[x].bytes();
            let k = 1 + off.index(line.len());
            line.splice(k..k, text.bytes());
            set_raw(&mut s, x, line);
        }
        Damage::JunkLine(at, text) => {
            let pos = hello + 1 + at.index(s.lines.len() - hello);
            s.insert(pos, Line::Raw(text.clone().into_bytes()));
        }
        Damage::FlipByte(a, off, xor) => {
            let x = pick(&recs, a);
            let mut line = s.lines[x].bytes();
            let k = off.index(line.len());
            line[k] ^= xor;
            set_raw(&mut s, x, line);
        }
    }
    s.bytes()
}
