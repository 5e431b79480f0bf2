//! The console fuzzer's kit: a model of a console as the kernel prints it
//! ([`Script`]), generators of valid passing consoles ([`valid`]), ways to
//! damage them ([`mutate`]), an independent statement of what a passing
//! console must satisfy ([`reference`]) and the seed corpus ([`corpus`]).
#![allow(dead_code)]

pub mod corpus;
pub mod mutate;
pub mod reference;
pub mod valid;

use std::ops::Range;

use stress::proto::{self, Frame, Record};

/// One console line, before it is turned into bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Text before Hello (firmware).
    Firmware(String),
    Rec(Box<Frame>),
    /// A KTAP line, as printed.
    Ktap(String),
    /// A `#` diagnostic, as printed.
    Diag(String),
    /// An empty or whitespace-only line.
    Blank(String),
    /// Raw bytes of a line (made by a mutation).
    Raw(Vec<u8>),
}

impl Line {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Line::Firmware(s) | Line::Ktap(s) | Line::Diag(s) | Line::Blank(s) => {
                s.as_bytes().to_vec()
            }
            Line::Rec(f) => proto::encode(f).into_bytes(),
            Line::Raw(b) => b.clone(),
        }
    }

    pub fn is_record(&self) -> bool {
        matches!(self, Line::Rec(_))
    }

    pub fn is_ktap(&self) -> bool {
        matches!(self, Line::Ktap(_))
    }
}

/// A console: lines, each ended by `\n` or `\r\n`, and maybe bytes after
/// the last newline (a cut line).
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    pub lines: Vec<Line>,
    /// Per line: ended by `\r\n` instead of `\n`.
    pub crlf: Vec<bool>,
}

impl Script {
    pub fn new(lines: Vec<Line>, crlf: Vec<bool>) -> Self {
        let mut crlf = crlf;
        crlf.resize(lines.len(), false);
        Script { lines, crlf }
    }

    /// The console's bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes_and_spans().0
    }

    /// The bytes and, per line, the span of its text (without the line end).
    pub fn bytes_and_spans(&self) -> (Vec<u8>, Vec<Range<usize>>) {
        let mut out = Vec::new();
        let mut spans = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.iter().enumerate() {
            let start = out.len();
            out.extend(l.bytes());
            spans.push(start..out.len());
            if self.crlf.get(i).copied().unwrap_or(false) {
                out.push(b'\r');
            }
            out.push(b'\n');
        }
        (out, spans)
    }

    /// Indexes of the record lines.
    pub fn records(&self) -> Vec<usize> {
        (0..self.lines.len())
            .filter(|&i| self.lines[i].is_record())
            .collect()
    }

    /// Indexes of the KTAP lines.
    pub fn ktap(&self) -> Vec<usize> {
        (0..self.lines.len())
            .filter(|&i| self.lines[i].is_ktap())
            .collect()
    }

    /// The index of the Done record.
    pub fn done(&self) -> Option<usize> {
        self.lines
            .iter()
            .rposition(|l| matches!(l, Line::Rec(f) if matches!(f.rec, Record::Done { .. })))
    }

    /// The index of the Hello record.
    pub fn hello(&self) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| matches!(l, Line::Rec(f) if matches!(f.rec, Record::Hello { .. })))
    }

    /// Renumbers the records 0, 1, 2, ... in line order.
    pub fn renumber(&mut self) {
        let mut seq = 0;
        for l in &mut self.lines {
            if let Line::Rec(f) = l {
                f.seq = seq;
                seq += 1;
            }
        }
    }

    pub fn insert(&mut self, at: usize, line: Line) {
        let at = at.min(self.lines.len());
        self.lines.insert(at, line);
        self.crlf.insert(at, false);
    }

    pub fn remove(&mut self, at: usize) -> Line {
        self.crlf.remove(at);
        self.lines.remove(at)
    }
}

impl Script {
    /// A script of an existing console's whole lines (bytes after the last
    /// newline are dropped): records decoded, the rest kept as printed.
    pub fn parse(bytes: &[u8]) -> Script {
        let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        parts.pop();
        let mut lines = Vec::new();
        let mut crlf = Vec::new();
        for p in parts {
            let (p, cr) = match p.strip_suffix(b"\r") {
                Some(p) => (p, true),
                None => (p, false),
            };
            crlf.push(cr);
            let line = match std::str::from_utf8(p) {
                Err(_) => Line::Raw(p.to_vec()),
                Ok(s) => match proto::parse(s) {
                    proto::Line::Record(f) if proto::encode(&f) == s => Line::Rec(Box::new(f)),
                    proto::Line::Ktap(_) => Line::Ktap(s.into()),
                    proto::Line::Diag(_) => Line::Diag(s.into()),
                    proto::Line::Blank => Line::Blank(s.into()),
                    _ => Line::Raw(p.to_vec()),
                },
            };
            lines.push(line);
        }
        Script { lines, crlf }
    }
}
