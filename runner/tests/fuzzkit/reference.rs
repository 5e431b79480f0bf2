//! What a console must satisfy for its boot to pass, stated independently
//! of the runner's console and verdict code (by splitting the raw bytes on
//! `\n` and checking the whole document at once), as the fuzzer's second
//! opinion: the runner says `Pass` exactly when this says the console
//! passes and QEMU exited with the Pass status.
//!
//! Only the shared protocol parsers (`stress::proto`, `stress::ktap`) are
//! used, to decode a record or a KTAP line.

use stress::ktap::{self, KtapLine};
use stress::proto::{self, Line, Record, Verdict};

/// `Ok` when a console of these bytes passes; else the first rule broken.
pub fn passes(bytes: &[u8]) -> Result<(), String> {
    let parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let mut lines = Vec::new();
    for p in &parts {
        let s = std::str::from_utf8(p).map_err(|_| "invalid UTF-8".to_string())?;
        let s = s.trim_end_matches('\r');
        // (A record's JSON may carry DEL and C1 controls unescaped: the
        // record rule below judges those lines.)
        if !s.starts_with('@') && s.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("control character in {s:?}"));
        }
        lines.push(s);
    }
    // After the last newline: nothing, or a blank rest of a line.
    if lines.pop().is_some_and(|rest| !rest.trim().is_empty()) {
        return Err("the console ends in the middle of a line".into());
    }
    let mut records: Vec<(usize, Record, u64)> = Vec::new();
    let mut ktap_lines: Vec<(usize, KtapLine)> = Vec::new();
    let mut other: Vec<usize> = Vec::new();
    for (n, s) in lines.iter().enumerate() {
        if s.starts_with('@') {
            match proto::parse(s) {
                Line::Record(f) if proto::encode(&f) == *s => records.push((n, f.rec, f.seq)),
                _ => return Err(format!("line {n} starts with '@' but is no exact record")),
            }
        } else if s.trim().is_empty() || s.starts_with('#') {
        } else if let Some(k) = ktap::parse(s) {
            ktap_lines.push((n, k));
        } else {
            other.push(n);
        }
    }
    // Records: numbered 0, 1, 2, ...; Hello first and only once; Done last,
    // once, saying pass; nothing that reports a failure.
    for (i, (_, _, seq)) in records.iter().enumerate() {
        if *seq != i as u64 {
            return Err(format!("record {i} has seq {seq}"));
        }
    }
    let (first, last) = match (records.first(), records.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err("no record".into()),
    };
    if !matches!(first.1, Record::Hello { .. }) {
        return Err("the first record is not Hello".into());
    }
    if !matches!(
        last.1,
        Record::Done {
            verdict: Verdict::Pass,
            ..
        }
    ) {
        return Err("the last record is not Done{pass}".into());
    }
    for (_, r, _) in &records[1..] {
        if matches!(r, Record::Hello { .. }) {
            return Err("a second Hello".into());
        }
    }
    for (_, r, _) in &records[..records.len() - 1] {
        match r {
            Record::Done { .. } => return Err("a Done before the last record".into()),
            Record::Failure(_) | Record::Panic { .. } | Record::Hang { .. } => {
                return Err("a Failure, Panic or Hang record".into());
            }
            _ => {}
        }
    }
    let (hello_line, done_line) = (first.0, last.0);
    // Text outside the protocol only before Hello.
    if let Some(n) = other.iter().find(|&&n| n > hello_line) {
        return Err(format!("line {n} is text outside the protocol after Hello"));
    }
    // KTAP: between Hello and Done; version 1, then the plan, then results
    // 1..=N, none failed; required in mode=tests.
    if let Some((n, _)) = ktap_lines
        .iter()
        .find(|(n, _)| *n < hello_line || *n > done_line)
    {
        return Err(format!("KTAP line {n} outside Hello..Done"));
    }
    let mode_tests = match &first.1 {
        Record::Hello { cmdline, .. } => {
            cmdline.split_whitespace().find(|t| t.starts_with("mode=")) == Some("mode=tests")
        }
        _ => false,
    };
    if ktap_lines.is_empty() {
        return if mode_tests {
            Err("mode=tests without KTAP".into())
        } else {
            Ok(())
        };
    }
    let kinds: Vec<&KtapLine> = ktap_lines.iter().map(|(_, k)| k).collect();
    let (KtapLine::Version(1), Some(KtapLine::Plan(plan))) = (kinds[0], kinds.get(1)) else {
        return Err("KTAP does not start with 'KTAP version 1' and a plan".into());
    };
    let results = &kinds[2..];
    if results.len() as u64 != u64::from(*plan) {
        return Err(format!(
            "KTAP plan {plan}, {} other KTAP lines",
            results.len()
        ));
    }
    for (i, k) in results.iter().enumerate() {
        match k {
            KtapLine::Result { ok, num, .. } => {
                if *num as usize != i + 1 {
                    return Err(format!("KTAP result {num} in place {}", i + 1));
                }
                if !ok && !k.is_skip() {
                    return Err(format!("KTAP result {num} failed"));
                }
            }
            _ => return Err("a second KTAP version or plan line".into()),
        }
    }
    Ok(())
}
