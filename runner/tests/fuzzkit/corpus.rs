//! The seed corpus in `runner/tests/corpus/`: consoles (QEMU's stdout
//! bytes, one file each) and `MANIFEST`, one line per file — its name, how
//! QEMU ended (`status=N`, `signal=N` or `timeout`) and the verdict the
//! runner must give. `real-*` files are captured from the kernel
//! (`scripts/capture-corpus.sh`); the others are made by hand.

use std::path::PathBuf;

use std::time::Duration;

use runner::transcript::Transcript;
use runner::verdict::{Exit, Verdict};

/// One corpus entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub file: String,
    pub bytes: Vec<u8>,
    pub exit: Exit,
    /// For a timeout: the output was spread until the end.
    pub busy: bool,
    pub verdict: Verdict,
}

impl Entry {
    /// The entry as the boot engine would have read it: in one read, or
    /// line by line over the whole timeout (`timeout-busy`).
    pub fn transcript(&self) -> Transcript {
        if !self.busy {
            return Transcript::whole(&self.bytes, self.exit.clone());
        }
        let lines: Vec<&[u8]> = self.bytes.split_inclusive(|&b| b == b'\n').collect();
        let timeout = Duration::from_secs(10);
        let reads = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (timeout * (i as u32 + 1) / lines.len() as u32, l.to_vec()))
            .collect();
        Transcript::in_reads(reads, Exit::TimedOut)
    }
}

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// Parses `status=N`, `signal=N`, `timeout`.
pub fn parse_exit(s: &str) -> Option<Exit> {
    if s == "timeout" || s == "timeout-busy" {
        return Some(Exit::TimedOut);
    }
    let (k, v) = s.split_once('=')?;
    let v: i32 = v.parse().ok()?;
    match k {
        "status" => Some(Exit::Status(v)),
        "signal" => Some(Exit::Signal(v)),
        _ => None,
    }
}

pub fn show_exit(e: &Exit) -> String {
    match e {
        Exit::Status(s) => format!("status={s}"),
        Exit::Signal(s) => format!("signal={s}"),
        _ => "timeout".into(),
    }
}

fn parse_verdict(s: &str) -> Option<Verdict> {
    Verdict::ALL.iter().copied().find(|v| v.name() == s)
}

/// Every entry of the manifest, with its bytes.
pub fn load() -> Vec<Entry> {
    let manifest = std::fs::read_to_string(dir().join("MANIFEST")).expect("tests/corpus/MANIFEST");
    manifest
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "MANIFEST line {l:?}: want FILE EXIT VERDICT");
            Entry {
                file: f[0].into(),
                bytes: std::fs::read(dir().join(f[0])).unwrap_or_else(|e| panic!("{}: {e}", f[0])),
                exit: parse_exit(f[1]).unwrap_or_else(|| panic!("bad exit in {l:?}")),
                busy: f[1] == "timeout-busy",
                verdict: parse_verdict(f[2]).unwrap_or_else(|| panic!("bad verdict in {l:?}")),
            }
        })
        .collect()
}
