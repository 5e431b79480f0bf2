//! The console of one boot: every line the kernel printed on COM1, classified
//! with [`stress::proto::parse`], and the facts the verdict is built from
//! (records in order, KTAP results, garbled lines, protocol violations, the
//! last lines, and when Hello/Ready arrived).
//!
//! The kernel writes whole lines only; anything that breaks the protocol is
//! kept here as evidence so that a damaged console can never read as a pass.

use std::collections::VecDeque;
use std::time::Duration;

use stress::ktap::KtapLine;
use stress::proto::{self, Exception, Frame, Garble, Line, Record};

/// How one chunk of console output ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnd {
    /// A normal line ended by `\n`.
    Newline,
    /// The console closed before the newline (QEMU exited mid-line).
    Eof,
    /// The line was longer than the reader accepts; this is its first part.
    Overlong,
}

/// A KTAP result line, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KtapResult {
    pub ok: bool,
    pub num: u32,
    /// The test name (KTAP "description").
    pub name: String,
    /// The text after `#`, e.g. `SKIP no disk` or a failure reason.
    pub directive: Option<String>,
}

impl KtapResult {
    /// True for a `# SKIP` result.
    pub fn is_skip(&self) -> bool {
        self.directive
            .as_deref()
            .is_some_and(|d| d.starts_with("SKIP"))
    }

    /// True for a result that is neither ok nor skipped.
    pub fn failed(&self) -> bool {
        !self.ok && !self.is_skip()
    }
}

/// A classified KTAP line, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KtapEntry {
    Version(u32),
    Plan(u32),
    Result(KtapResult),
}

/// What one console line was.
#[derive(Clone, Debug, PartialEq)]
pub enum LineKind {
    /// A valid record line.
    Record(Box<Frame>),
    /// A KTAP version, plan or result line.
    Ktap(KtapEntry),
    /// A `# ...` diagnostic (text after `#`).
    Diag(String),
    /// A damaged record or binary junk; the reason.
    Garbled(String),
    /// An empty line.
    Blank,
    /// Other printable text (firmware, QEMU).
    Other,
}

/// One console line as the live callback and reports see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsoleLine {
    /// Time since QEMU was spawned.
    pub at: Duration,
    /// The line as printable text (invalid UTF-8 replaced, control
    /// characters escaped), without its newline.
    pub text: String,
    pub kind: LineKind,
    pub end: LineEnd,
}

/// The KTAP document of a boot (flat form only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ktap {
    pub version: Option<u32>,
    pub plan: Option<u32>,
    pub results: Vec<KtapResult>,
}

impl Ktap {
    /// True when any KTAP line was seen.
    pub fn seen(&self) -> bool {
        self.version.is_some() || self.plan.is_some() || !self.results.is_empty()
    }

    /// Results that failed (not ok, not skipped).
    pub fn failed(&self) -> impl Iterator<Item = &KtapResult> {
        self.results.iter().filter(|r| r.failed())
    }

    /// The result for a test name.
    pub fn result(&self, name: &str) -> Option<&KtapResult> {
        self.results.iter().find(|r| r.name == name)
    }

    /// Why the document is incomplete, if it is: a plan of N with fewer
    /// results, results without a plan, or a header without anything.
    pub fn incomplete(&self) -> Option<String> {
        match self.plan {
            Some(n) if (self.results.len() as u64) < u64::from(n) => Some(format!(
                "KTAP plan says {n} tests but only {} results arrived",
                self.results.len()
            )),
            Some(n) if (self.results.len() as u64) > u64::from(n) => Some(format!(
                "KTAP plan says {n} tests but {} results arrived",
                self.results.len()
            )),
            None if self.seen() => Some("KTAP output without a plan line".into()),
            _ => None,
        }
    }
}

/// A garbled line kept as evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GarbledLine {
    /// 1-based line number on the console.
    pub line: usize,
    pub reason: String,
    /// The start of the line, printable.
    pub preview: String,
}

/// Everything learnt from one boot's console.
#[derive(Clone, Debug)]
pub struct Console {
    /// Valid record frames, in arrival order.
    pub frames: Vec<Frame>,
    pub ktap: Ktap,
    pub garbled: Vec<GarbledLine>,
    /// Protocol violations: lost records (sequence gaps), records before
    /// Hello or after Done, a KTAP version other than 1.
    pub violations: Vec<String>,
    /// The console ended in the middle of a line: what was there.
    pub cut: Option<String>,
    /// The last lines, printable.
    pub tail: VecDeque<String>,
    tail_cap: usize,
    /// Number of lines seen.
    pub lines: usize,
    pub last_line_at: Option<Duration>,
    pub hello_at: Option<Duration>,
    pub ready_at: Option<Duration>,
    pub done_at: Option<Duration>,
}

/// Longest preview kept for a line in reasons.
const PREVIEW: usize = 120;

impl Console {
    /// An empty console that keeps the last `tail_cap` lines.
    pub fn new(tail_cap: usize) -> Self {
        Console {
            frames: Vec::new(),
            ktap: Ktap::default(),
            garbled: Vec::new(),
            violations: Vec::new(),
            cut: None,
            tail: VecDeque::new(),
            tail_cap: tail_cap.max(1),
            lines: 0,
            last_line_at: None,
            hello_at: None,
            ready_at: None,
            done_at: None,
        }
    }

    /// Classifies one chunk of console output and records what it says.
    pub fn push(&mut self, raw: &[u8], at: Duration, end: LineEnd) -> ConsoleLine {
        let text = printable(raw);
        let kind = match std::str::from_utf8(raw) {
            // `parse` flags control characters; invalid UTF-8 is the same
            // kind of damage (Garble::Binary in the protocol's words).
            Err(_) => LineKind::Garbled(garble_reason(&Garble::Binary)),
            Ok(s) => classify(s),
        };
        let line = ConsoleLine {
            at,
            text,
            kind,
            end,
        };
        if end == LineEnd::Eof && line.kind == LineKind::Blank {
            // Nothing after the last newline: not a line at all.
            return line;
        }
        self.lines += 1;
        self.last_line_at = Some(at);
        if self.tail.len() == self.tail_cap {
            self.tail.pop_front();
        }
        self.tail.push_back(line.text.clone());
        match end {
            LineEnd::Eof => {
                // Junk is junk with or without its newline (a kernel that
                // prints garbage and hangs is killed mid-line).
                if line.kind == LineKind::Garbled(garble_reason(&Garble::Binary)) {
                    self.garble(garble_reason(&Garble::Binary), &line.text);
                }
                self.cut = Some(format!(
                    "console cut mid-line ({}): {}",
                    describe(&line.kind),
                    preview(&line.text)
                ));
                return line;
            }
            LineEnd::Overlong => {
                self.garble(format!("line longer than {} bytes", raw.len()), &line.text);
                return line;
            }
            LineEnd::Newline => {}
        }
        match &line.kind {
            LineKind::Record(f) => self.record(f.as_ref().clone(), at),
            LineKind::Ktap(k) => self.ktap_line(k.clone()),
            LineKind::Garbled(reason) => self.garble(reason.clone(), &line.text),
            LineKind::Other if self.hello_at.is_some() => {
                // Before Hello, firmware may print; after it the kernel owns
                // the console and prints records, KTAP and `#` lines only.
                self.violations.push(format!(
                    "line {}: text outside the protocol after Hello: {}",
                    self.lines,
                    preview(&line.text)
                ));
            }
            LineKind::Diag(_) | LineKind::Blank | LineKind::Other => {}
        }
        line
    }

    fn garble(&mut self, reason: String, text: &str) {
        self.garbled.push(GarbledLine {
            line: self.lines,
            reason,
            preview: preview(text),
        });
    }

    fn record(&mut self, frame: Frame, at: Duration) {
        let expected = self.frames.len() as u64;
        if frame.seq != expected {
            self.violations.push(format!(
                "record seq {} where {expected} was expected (a record line was lost or repeated)",
                frame.seq
            ));
        }
        let name = record_name(&frame.rec);
        if self.done_at.is_some() {
            self.violations
                .push(format!("{name} record after Done (Done must be last)"));
        }
        let is_hello = matches!(frame.rec, Record::Hello { .. });
        if is_hello && self.hello_at.is_some() {
            self.violations.push("a second Hello record".into());
        } else if self.frames.is_empty() && !is_hello {
            self.violations
                .push(format!("first record is {name}, not Hello"));
        } else if is_hello && !self.frames.is_empty() {
            self.violations.push("Hello is not the first record".into());
        }
        let slot = match frame.rec {
            Record::Hello { .. } => Some(&mut self.hello_at),
            Record::Ready { .. } => Some(&mut self.ready_at),
            Record::Done { .. } => Some(&mut self.done_at),
            _ => None,
        };
        if let Some(slot) = slot {
            slot.get_or_insert(at);
        }
        self.frames.push(frame);
    }

    fn ktap_line(&mut self, k: KtapEntry) {
        let what = match &k {
            KtapEntry::Version(_) => "KTAP version line",
            KtapEntry::Plan(_) => "KTAP plan",
            KtapEntry::Result(_) => "KTAP result",
        };
        if self.hello_at.is_none() {
            self.violations.push(format!("{what} before Hello"));
        }
        if self.done_at.is_some() {
            self.violations
                .push(format!("{what} after Done (Done must be last)"));
        }
        if self.ktap.version.is_none() && !matches!(k, KtapEntry::Version(_)) {
            self.violations
                .push(format!("{what} before the 'KTAP version 1' line"));
        } else if self.ktap.plan.is_none() && matches!(k, KtapEntry::Result(_)) {
            self.violations.push(format!("{what} before the plan"));
        }
        match k {
            KtapEntry::Version(v) => {
                if v != 1 {
                    self.violations.push(format!("KTAP version {v}, not 1"));
                }
                if self.ktap.version.is_some() {
                    self.violations.push("a second KTAP header".into());
                }
                self.ktap.version = Some(v);
            }
            KtapEntry::Plan(n) => {
                if self.ktap.plan.is_some() {
                    self.violations.push("a second KTAP plan".into());
                }
                self.ktap.plan = Some(n);
            }
            KtapEntry::Result(r) => {
                let expected = self.ktap.results.len() as u32 + 1;
                if r.num != expected {
                    self.violations.push(format!(
                        "KTAP result {} where {expected} was expected",
                        r.num
                    ));
                }
                self.ktap.results.push(r);
            }
        }
    }

    /// Every record, in order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.frames.iter().map(|f| &f.rec)
    }

    /// The first Panic record: (cpu, message, exception).
    pub fn panic(&self) -> Option<(u32, &str, Option<&Exception>)> {
        self.records().find_map(|r| match r {
            Record::Panic {
                cpu,
                message,
                exception,
            } => Some((*cpu, message.as_str(), exception.as_ref())),
            _ => None,
        })
    }

    /// The kernel's own verdict from its Done record.
    pub fn done(&self) -> Option<proto::Verdict> {
        self.records().find_map(|r| match r {
            Record::Done { verdict, .. } => Some(*verdict),
            _ => None,
        })
    }

    /// Every Failure record.
    pub fn failures(&self) -> impl Iterator<Item = &stress::Failure> {
        self.records().filter_map(|r| match r {
            Record::Failure(f) => Some(f),
            _ => None,
        })
    }

    /// The kernel's `mode=` as its Hello record echoes the command line.
    pub fn mode(&self) -> Option<&str> {
        self.records().find_map(|r| match r {
            Record::Hello { cmdline, .. } => cmdline
                .split_whitespace()
                .find_map(|t| t.strip_prefix("mode=")),
            _ => None,
        })
    }

    /// The first Hang record (the kernel's watchdog fired).
    pub fn hang(&self) -> Option<&Record> {
        self.records().find(|r| matches!(r, Record::Hang { .. }))
    }
}

/// Reason for a record line that parses but is not byte for byte what
/// [`proto::encode`] makes of its frame.
pub const NOT_CANONICAL: &str = "record line that parses but is not exactly as the kernel encodes it (altered checksum or JSON text)";
/// Reason for a line that starts with `@` but is no record.
pub const AT_LINE: &str = "line that starts like a record ('@') but is not one";

/// Classifies one line of text with the shared parser, into owned form.
///
/// Stricter than [`proto::parse`] in two ways, so that damage cannot hide:
/// a record line must be exactly what [`proto::encode`] makes of the frame
/// it parses to (`parse` alone accepts e.g. a checksum with a leading `+`
/// or a ninth hex digit `0`), and a line that starts with `@` is a record
/// or garbled (a record cut by a newline leaves its `@` behind).
pub fn classify(s: &str) -> LineKind {
    match proto::parse(s) {
        Line::Record(f) => {
            if proto::encode(&f) == s.trim_end_matches(['\r', '\n']) {
                LineKind::Record(Box::new(f))
            } else {
                LineKind::Garbled(NOT_CANONICAL.into())
            }
        }
        Line::Other(t) if t.starts_with('@') => LineKind::Garbled(AT_LINE.into()),
        Line::Ktap(k) => LineKind::Ktap(match k {
            KtapLine::Version(v) => KtapEntry::Version(v),
            KtapLine::Plan(n) => KtapEntry::Plan(n),
            KtapLine::Result {
                ok,
                num,
                desc,
                directive,
            } => KtapEntry::Result(KtapResult {
                ok,
                num,
                name: desc.to_string(),
                directive: directive.map(str::to_string),
            }),
        }),
        Line::Diag(d) => LineKind::Diag(d.to_string()),
        Line::Garbled(g) => LineKind::Garbled(garble_reason(&g)),
        Line::Blank => LineKind::Blank,
        Line::Other(_) => LineKind::Other,
    }
}

/// Human words for a protocol garble.
pub fn garble_reason(g: &Garble) -> String {
    match g {
        Garble::Version(v) => format!("record of unknown protocol version @fs{v}"),
        Garble::NoChecksum => "record line without its ~checksum".into(),
        Garble::BadChecksum => "record line with a bad checksum".into(),
        Garble::Json(e) => format!("record line whose JSON is not a frame ({e})"),
        Garble::Binary => "binary junk (control characters or invalid UTF-8)".into(),
    }
}

fn describe(kind: &LineKind) -> String {
    match kind {
        LineKind::Record(f) => {
            format!("a whole {} record without its newline", record_name(&f.rec))
        }
        LineKind::Garbled(r) => r.clone(),
        LineKind::Ktap(_) => "a KTAP line".into(),
        LineKind::Diag(_) => "a diagnostic".into(),
        LineKind::Blank | LineKind::Other => "text".into(),
    }
}

/// The record's variant name (`Hello`, `Ready`, ...).
pub fn record_name(r: &Record) -> &'static str {
    match r {
        Record::Hello { .. } => "Hello",
        Record::Ready { .. } => "Ready",
        Record::Progress { .. } => "Progress",
        Record::Failure(_) => "Failure",
        Record::Hang { .. } => "Hang",
        Record::Panic { .. } => "Panic",
        Record::Measure { .. } => "Measure",
        Record::Done { .. } => "Done",
    }
}

/// Bytes as printable text: invalid UTF-8 replaced, control characters
/// escaped (`\u{1b}`), the trailing `\r` dropped.
pub fn printable(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let s = s.trim_end_matches(['\n', '\r']);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The start of a line, for one-line reasons.
pub fn preview(text: &str) -> String {
    if text.chars().count() <= PREVIEW {
        text.to_string()
    } else {
        let cut: String = text.chars().take(PREVIEW).collect();
        format!("{cut}...")
    }
}
