//! Writes the hand-made part of the seed corpus (`runner/tests/corpus/`,
//! every file not named `real-*`) and prints its MANIFEST lines: nasty
//! consoles designed one by one, each with the verdict the runner must
//! give. Run `cargo test -p runner --test corpus_handmade -- --ignored`
//! after a protocol change, check the diff, commit.

mod fuzzkit;

use fuzzkit::corpus;
use runner::verdict::Exit;
use stress::proto::{self, Frame, Record, Verdict};
use stress::scenarios::d15293;
use stress::{Failure, FailureKind, ktap};

fn rec(seq: u64, rec: Record) -> String {
    proto::encode(&Frame { seq, cpu: 0, rec })
}

fn hello(mode: &str) -> Record {
    Record::Hello {
        kernel: "0.1.0".into(),
        cpus: 2,
        mem_mib: 255,
        transport: "mmio".into(),
        cmdline: format!("mode={mode}"),
    }
}

fn ready() -> Record {
    Record::Ready {
        cpus: 2,
        boot_ns: 11_000_000,
    }
}

fn done(pass: bool) -> Record {
    Record::Done {
        verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        ms: 21,
        stats: None,
    }
}

fn lines(v: &[String]) -> Vec<u8> {
    let mut s = v.join("\n");
    s.push('\n');
    s.into_bytes()
}

fn probe() -> Vec<String> {
    vec![rec(0, hello("probe")), rec(1, ready()), rec(2, done(true))]
}

fn tests_console(results: &[(bool, &str)], plan: u32) -> Vec<String> {
    let mut v = vec![
        rec(0, hello("tests expect_cpus=2")),
        rec(1, ready()),
        ktap::HEADER.into(),
        ktap::plan(plan),
    ];
    for (i, (ok, name)) in results.iter().enumerate() {
        v.push(ktap::result(*ok, i as u32 + 1, name, None));
    }
    v.push(rec(2, done(true)));
    v
}

fn progress(seq: u64, ms: u64) -> String {
    rec(
        seq,
        Record::Progress {
            ms,
            stats: stress::Stats {
                forks: ms / 10,
                ..Default::default()
            },
        },
    )
}

/// (file, bytes, exit, verdict).
fn cases() -> Vec<(&'static str, Vec<u8>, Exit, &'static str)> {
    let pass = Exit::Status(33);
    let p = probe();
    let done_line = &p[2];
    let mut v: Vec<(&'static str, Vec<u8>, Exit, &'static str)> = Vec::new();

    // Two CPUs writing into one line: Done spliced into Ready.
    let (a, b) = p[1].split_at(p[1].len() / 2);
    let spliced = format!("{}\n{a}{}\n{b}\n", p[0], p[2]);
    v.push((
        "spliced-two-cpus.console",
        spliced.into_bytes(),
        pass.clone(),
        "Garbled",
    ));

    // Byte-wise interleaving of Ready and Done.
    let (r, d) = (p[1].as_bytes(), p[2].as_bytes());
    let mut mixed = format!("{}\n", p[0]).into_bytes();
    for i in 0..r.len().max(d.len()) {
        mixed.extend(r.get(i));
        mixed.extend(d.get(i));
    }
    mixed.extend(b"\n\n");
    v.push(("interleaved-bytes.console", mixed, pass.clone(), "Garbled"));

    // A crash cuts the Done line in half / before its newline.
    let mut cut = lines(&p[..2]);
    cut.extend(&done_line.as_bytes()[..done_line.len() / 2]);
    v.push(("cut-mid-done.console", cut, pass.clone(), "Crashed"));
    let mut cut = lines(&p[..2]);
    cut.extend(done_line.as_bytes());
    v.push(("done-without-newline.console", cut, pass.clone(), "Crashed"));

    // Lost Done at a line boundary, but the Pass status.
    v.push(("no-done.console", lines(&p[..2]), pass.clone(), "Crashed"));

    // Junk: terminal escape and NUL bytes between records.
    let mut j = p.clone();
    j.insert(2, "\u{1b}[2J\u{0}\u{0}".into());
    v.push((
        "junk-escape-nul.console",
        lines(&j),
        pass.clone(),
        "Garbled",
    ));
    let mut j = p.clone();
    j.insert(2, "login: root".into());
    v.push((
        "junk-text-after-hello.console",
        lines(&j),
        pass.clone(),
        "Garbled",
    ));
    let mut j = lines(&p);
    let after_hello = p[0].len() + 1;
    j.splice(after_hello..after_hello, b"# caf\xe9\n".iter().copied());
    v.push(("invalid-utf8.console", j, pass.clone(), "Garbled"));
    v.push(("nul-bytes.console", vec![0, 0, 0], pass.clone(), "Garbled"));

    // A record cut by a newline leaves its '@' behind (before Hello).
    let mut at = vec!["@".to_string()];
    at.extend(p.clone());
    v.push((
        "at-line-before-hello.console",
        lines(&at),
        pass.clone(),
        "Garbled",
    ));

    // Checksums that `proto::parse` accepts but the kernel never prints.
    let (body, crc) = p[1].rsplit_once(" ~").expect("crc");
    for (file, bad) in [
        ("crc-leading-zero.console", format!("{body} ~0{crc}")),
        ("crc-plus-sign.console", format!("{body} ~+{crc}")),
        (
            "crc-uppercase.console",
            format!("{body} ~{}", crc.to_uppercase()),
        ),
    ] {
        let mut x = p.clone();
        x[1] = bad;
        v.push((file, lines(&x), pass.clone(), "Garbled"));
    }

    // Sequence numbers: out of order, repeated, gapped; a second Hello.
    v.push((
        "records-out-of-order.console",
        lines(&[p[0].clone(), p[2].clone(), p[1].clone()]),
        pass.clone(),
        "Garbled",
    ));
    v.push((
        "seq-repeated.console",
        lines(&[p[0].clone(), p[1].clone(), p[1].clone(), rec(3, done(true))]),
        pass.clone(),
        "Garbled",
    ));
    v.push((
        "seq-gap.console",
        lines(&[p[0].clone(), p[1].clone(), rec(3, done(true))]),
        pass.clone(),
        "Garbled",
    ));
    v.push((
        "second-hello.console",
        lines(&[p[0].clone(), rec(1, hello("probe")), rec(2, done(true))]),
        pass.clone(),
        "Garbled",
    ));
    v.push((
        "stress-progress-lost.console",
        lines(&[
            rec(0, hello("stress variant=baseline seed=0x1 duration_ms=300")),
            rec(1, ready()),
            progress(2, 250),
            progress(4, 750),
            rec(5, done(true)),
        ]),
        pass.clone(),
        "Garbled",
    ));

    // KTAP: a result missing, renumbered, out of place, or no KTAP at all.
    let names = [
        (true, "cpus_check_in"),
        (true, "lock_counter"),
        (true, "disk_roundtrip"),
    ];
    v.push((
        "ktap-result-missing.console",
        lines(&tests_console(&names, 4)),
        pass.clone(),
        "Fail",
    ));
    let mut k = tests_console(&names, 3);
    k[5] = ktap::result(true, 3, "lock_counter", None);
    v.push((
        "ktap-renumbered.console",
        lines(&k),
        pass.clone(),
        "Garbled",
    ));
    let mut k = tests_console(&names, 3);
    k.remove(2);
    v.push((
        "ktap-no-version-line.console",
        lines(&k),
        pass.clone(),
        "Garbled",
    ));
    let mut k = tests_console(&names, 3);
    let plan = k.remove(3);
    k.insert(6, plan);
    v.push(("ktap-plan-last.console", lines(&k), pass.clone(), "Garbled"));
    let mut k = tests_console(&names, 3);
    let d = k.remove(7);
    k.insert(2, d);
    v.push((
        "ktap-after-done.console",
        lines(&k),
        pass.clone(),
        "Garbled",
    ));
    v.push((
        "mode-tests-without-ktap.console",
        lines(&[
            rec(0, hello("tests expect_cpus=2")),
            rec(1, ready()),
            rec(2, done(true)),
        ]),
        pass.clone(),
        "Fail",
    ));
    let mut k = tests_console(&names, 3);
    k[5] = ktap::result(false, 2, "lock_counter", Some("counter 199998 != 200000"));
    v.push((
        "ktap-not-ok-pass-status.console",
        lines(&k),
        pass.clone(),
        "Fail",
    ));

    // The kernel says fail, or reports a failure, under the Pass status.
    v.push((
        "done-fail-pass-status.console",
        lines(&[p[0].clone(), p[1].clone(), rec(2, done(false))]),
        pass.clone(),
        "Fail",
    ));
    let failure = Record::Failure(Failure {
        kind: FailureKind::Repopulated,
        seed: 1,
        scenario: stress::ScenarioId::DEFAULT,
        variant: d15293::BASELINE,
        cpu: 1,
        ms: 420,
        detail: "split found pindex 4 repopulated".into(),
        traces: Vec::new(),
    });
    v.push((
        "failure-then-done-pass.console",
        lines(&[
            p[0].clone(),
            p[1].clone(),
            rec(2, failure),
            rec(3, done(true)),
        ]),
        pass.clone(),
        "Fail",
    ));

    // Valid consoles that must pass: firmware text first, CRLF line ends,
    // diagnostics and blank lines after Done, a trailing blank partial line.
    let mut fw = vec![
        "SeaBIOS (version 1.16.2-debian-1.16.2-1)".to_string(),
        String::new(),
    ];
    fw.extend(p.clone());
    v.push((
        "firmware-then-pass.console",
        lines(&fw),
        pass.clone(),
        "Pass",
    ));
    let crlf = format!("{}\r\n", p.join("\r\n"));
    v.push(("crlf-pass.console", crlf.into_bytes(), pass.clone(), "Pass"));
    let mut tail = p.clone();
    tail.extend(["# shutting down".to_string(), "  ".into()]);
    let mut t = lines(&tail);
    t.extend(b" \t");
    v.push(("diag-after-done-pass.console", t, pass.clone(), "Pass"));

    // Endings: nothing but blank lines; Done then a hang; status 0 after Done.
    v.push((
        "early-exit-blank-lines.console",
        b"\n\r\n\n".to_vec(),
        pass.clone(),
        "EarlyExit",
    ));
    v.push((
        "done-then-timeout.console",
        lines(&p),
        Exit::TimedOut,
        "HangSilent",
    ));
    v.push((
        "done-then-reset.console",
        lines(&p),
        Exit::Status(0),
        "Crashed",
    ));
    v.push((
        "done-then-sigkill.console",
        lines(&p),
        Exit::Signal(9),
        "Crashed",
    ));
    v
}

#[test]
#[ignore = "writes runner/tests/corpus/: run by hand after a protocol change"]
fn write_handmade_corpus() {
    for (file, bytes, exit, verdict) in cases() {
        std::fs::write(corpus::dir().join(file), bytes).expect("write");
        println!("{file} {} {verdict}", corpus::show_exit(&exit));
    }
}

/// The committed hand-made files are what this file makes (so that the
/// comments above describe what the corpus holds).
#[test]
fn handmade_corpus_is_up_to_date() {
    for (file, bytes, _, _) in cases() {
        let have = std::fs::read(corpus::dir().join(file)).unwrap_or_default();
        assert!(
            have == bytes,
            "{file} differs from corpus_handmade.rs: rerun it with --ignored"
        );
    }
}
