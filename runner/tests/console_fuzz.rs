//! Fuzzing the runner's console classification — the whole path a boot's
//! output takes (stdout bytes in arbitrary reads → lines → classified
//! lines → verdict, with the exit status and the timeout), through
//! `runner::transcript`, with `proptest` on a fixed seed:
//!
//! - it never panics, and the verdict does not depend on how the pipe cut
//!   the bytes into reads;
//! - a valid passing console (generated, or a passing one of the seed
//!   corpus) is `Pass`;
//! - a damaged one — cut before the end of its Done line, lines spliced or
//!   interleaved by CPUs, junk inside records or between lines, records
//!   lost, repeated, reordered or renumbered, KTAP results missing or out
//!   of order, a failure reported — is never `Pass`;
//! - on any input (also random byte edits of valid consoles), `Pass` holds
//!   exactly when an independent statement of the rules (`fuzzkit::reference`)
//!   says the console passes and QEMU exited with the Pass status.
//!
//! `cargo test` runs [`SHORT_CASES`] inputs and the corpus; the long run is
//! `cargo xtask fuzz --cases N [--seed S]` (the ignored test `long_fuzz`).

mod fuzzkit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use fuzzkit::mutate::{self, Damage};
use fuzzkit::valid::{self, Mode};
use fuzzkit::{Script, corpus, reference};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use runner::transcript::Transcript;
use runner::verdict::{Exit, Verdict};

/// Inputs of the short run in `cargo test`.
pub const SHORT_CASES: u32 = 4000;
/// The short run's seed.
pub const SHORT_SEED: u64 = 0x5eed_f0c5;

/// Console bytes, shown as an escaped string when a case fails.
#[derive(Clone, PartialEq)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

/// One fuzz input.
#[derive(Clone, Debug)]
enum Input {
    /// A valid passing console: must pass.
    Valid { bytes: Bytes },
    /// A damaged passing console: must not pass.
    Damaged {
        damage: Damage,
        bytes: Bytes,
        exit: Exit,
    },
    /// Random byte edits of a valid console: `Pass` exactly when the
    /// reference says so.
    Havoc { bytes: Bytes, exit: Exit },
}

/// How a fuzzed QEMU ended: mostly the Pass status.
fn exit() -> impl Strategy<Value = Exit> {
    prop_oneof![
        6 => Just(Exit::Status(33)),
        1 => prop_oneof![Just(35), Just(37), Just(39), Just(0), Just(1), any::<i32>()].prop_map(Exit::Status),
        1 => prop_oneof![Just(9), Just(15), 1..32i32].prop_map(Exit::Signal),
        1 => Just(Exit::TimedOut),
        1 => "[^\\p{C}]{0,20}".prop_map(Exit::GuestStopped),
    ]
}

/// Passing consoles of the corpus, as scripts.
fn corpus_passing() -> Vec<Script> {
    corpus::load()
        .into_iter()
        .filter(|e| e.verdict == Verdict::Pass)
        .map(|e| Script::parse(&e.bytes))
        .collect()
}

/// A valid console: generated, or one of the corpus's passing ones.
fn base() -> impl Strategy<Value = (Script, Mode)> {
    let corpus = corpus_passing();
    assert!(!corpus.is_empty(), "the corpus has no passing console");
    prop_oneof![
        4 => valid::valid(),
        1 => prop::sample::select(corpus).prop_map(|s| {
            let tests = s.lines.iter().any(fuzzkit::Line::is_ktap);
            (s, if tests { Mode::Tests } else { Mode::Probe })
        }),
    ]
}

/// One random byte edit.
#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, u8),
    Duplicate(Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<Index>(), 1usize..200).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn havoc(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        match e {
            Edit::Insert(i, b) => {
                let p = i.index(len + 1);
                bytes.splice(p..p, b.iter().copied());
            }
            Edit::Delete(i, n) if len > 0 => {
                let p = i.index(len);
                bytes.drain(p..(p + n).min(len));
            }
            Edit::Replace(i, b) if len > 0 => bytes[i.index(len)] = *b,
            Edit::Duplicate(i, n) if len > 0 => {
                let p = i.index(len);
                let chunk = bytes[p..(p + n).min(len)].to_vec();
                bytes.splice(p..p, chunk);
            }
            _ => {}
        }
    }
    bytes
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        3 => base().prop_map(|(s, _)| Input::Valid { bytes: Bytes(s.bytes()) }),
        5 => (base(), mutate::damage(), exit()).prop_map(|((s, mode), damage, exit)| {
            let bytes = mutate::apply(&s, mode, &damage);
            Input::Damaged { damage, bytes: Bytes(bytes), exit }
        }),
        2 => (base(), prop::collection::vec(edit(), 1..5), exit()).prop_map(|((s, _), edits, exit)| {
            Input::Havoc { bytes: Bytes(havoc(s.bytes(), &edits)), exit }
        }),
    ]
}

/// Counts of what a run fed in, for the long run's report.
#[derive(Default)]
struct Counts {
    valid: AtomicU64,
    damaged: AtomicU64,
    havoc: AtomicU64,
    havoc_passed: AtomicU64,
}

fn check(input: &Input, cuts: &[usize], counts: &Counts) -> Result<(), TestCaseError> {
    let (bytes, exit) = match input {
        Input::Valid { bytes } => (bytes, Exit::Status(33)),
        Input::Damaged { bytes, exit, .. } | Input::Havoc { bytes, exit } => (bytes, exit.clone()),
    };
    let whole = Transcript::whole(bytes, exit.clone()).classify();
    let split = Transcript::split_at(bytes, cuts, exit.clone()).classify();
    let text = |c: &runner::transcript::Classified| {
        c.lines
            .iter()
            .map(|l| (l.text.clone(), l.end))
            .collect::<Vec<_>>()
    };
    prop_assert_eq!(text(&whole), text(&split), "lines depend on the reads");
    prop_assert_eq!(
        whole.judgement.verdict,
        split.judgement.verdict,
        "the verdict depends on the reads"
    );
    let v = whole.judgement.verdict;
    let reference = match exit {
        Exit::Status(33) => reference::passes(bytes),
        _ => Err(format!("QEMU {exit}")),
    };
    prop_assert_eq!(
        v == Verdict::Pass,
        reference.is_ok(),
        "runner: {} ({}); reference: {:?}",
        v,
        whole.judgement.reason,
        reference
    );
    match input {
        Input::Valid { .. } => {
            counts.valid.fetch_add(1, Ordering::Relaxed);
            prop_assert_eq!(v, Verdict::Pass, "{}", whole.judgement.reason);
        }
        Input::Damaged { damage, .. } => {
            counts.damaged.fetch_add(1, Ordering::Relaxed);
            prop_assert_ne!(v, Verdict::Pass, "a console damaged by {:?} passed", damage);
        }
        Input::Havoc { .. } => {
            counts.havoc.fetch_add(1, Ordering::Relaxed);
            if v == Verdict::Pass {
                counts.havoc_passed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

/// Runs `cases` inputs from `seed`; panics with the smallest failing input.
fn fuzz(cases: u32, seed: u64) -> Counts {
    let mut config = Config::with_cases(cases);
    config.failure_persistence = None;
    config.max_shrink_iters = 2000;
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let counts = Counts::default();
    let strategy = (input(), prop::collection::vec(0usize..4096, 0..12));
    if let Err(e) = runner.run(&strategy, |(input, cuts)| check(&input, &cuts, &counts)) {
        panic!("console fuzz (seed {seed:#x}) failed: {e}");
    }
    counts
}

#[test]
fn short_fuzz_on_a_fixed_seed() {
    let c = fuzz(SHORT_CASES, SHORT_SEED);
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    // Every kind of input was fed (counts include shrinking, none here).
    assert!(n(&c.valid) > 0 && n(&c.damaged) > 0 && n(&c.havoc) > 0);
}

#[test]
fn corpus_gets_its_verdicts() {
    let entries = corpus::load();
    assert!(entries.len() >= 30, "only {} corpus entries", entries.len());
    for e in &entries {
        let c = e.transcript().classify();
        assert_eq!(
            c.judgement.verdict, e.verdict,
            "{}: {}",
            e.file, c.judgement.reason
        );
        if !e.busy {
            // Byte by byte reads give the same.
            let cuts: Vec<usize> = (1..e.bytes.len()).collect();
            let s = Transcript::split_at(&e.bytes, &cuts, e.exit.clone()).classify();
            assert_eq!(
                s.judgement.verdict, e.verdict,
                "{} read byte by byte",
                e.file
            );
        }
        let reference = e.exit == Exit::Status(33) && reference::passes(&e.bytes).is_ok();
        assert_eq!(
            reference,
            e.verdict == Verdict::Pass,
            "{}: the reference disagrees",
            e.file
        );
    }
}

/// The long run: `cargo xtask fuzz --cases N --seed S` (or set
/// FORKSWAP_FUZZ_CASES / FORKSWAP_FUZZ_SEED and run this ignored test).
#[test]
#[ignore = "long: run with `cargo xtask fuzz`"]
fn long_fuzz() {
    let var = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| runner::seed::parse(&v).ok())
            .unwrap_or(d)
    };
    let cases = var("FORKSWAP_FUZZ_CASES", 10_000_000);
    let seed = var("FORKSWAP_FUZZ_SEED", 1);
    let cases = u32::try_from(cases).expect("at most 4294967295 cases");
    let t = Instant::now();
    let c = fuzz(cases, seed);
    let secs = t.elapsed().as_secs_f64();
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "fuzz: {cases} inputs from seed {seed:#x} in {secs:.1} s ({:.0}/s): {} valid (all Pass), \
         {} damaged (none Pass), {} random edits ({} of them Pass, all agreeing with the reference)",
        f64::from(cases) / secs.max(1e-9),
        n(&c.valid),
        n(&c.damaged),
        n(&c.havoc),
        n(&c.havoc_passed)
    );
}
