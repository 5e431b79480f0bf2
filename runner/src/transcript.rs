//! A boot after the fact: QEMU's stdout as the pipe delivered it (bytes in
//! reads, each with its arrival time), its stderr and how it ended, judged
//! by exactly the code a live boot runs — [`read_chunk`] splits the stream
//! into lines, [`Console::push`] classifies each, [`verdict::judge`] gives
//! the verdict. [`crate::boot`] does the same live, on threads; the console
//! fuzzer and the seed corpus (`runner/tests/`) come in through here.

use std::io::{BufReader, Read};
use std::time::Duration;

use crate::console::{Console, ConsoleLine, printable};
use crate::lines::{MAX_LINE, READ_BUFFER, STDERR_LINE, TAIL_LINES, push_tail, read_chunk};
use crate::verdict::{self, Ending, Exit, Judgement};

/// What a boot left behind.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// stdout in the pieces that `read(2)` returned, with the time since
    /// QEMU was spawned at which each arrived.
    pub stdout: Vec<(Duration, Vec<u8>)>,
    pub stderr: Vec<u8>,
    pub exit: Exit,
    /// Spawn to exit (or to the kill, at the timeout).
    pub elapsed: Duration,
    pub timeout: Duration,
    /// The longest line the console reader accepts ([`MAX_LINE`] live).
    pub line_cap: usize,
}

/// What the runner made of a transcript.
#[derive(Clone, Debug)]
pub struct Classified {
    pub console: Console,
    /// Every line, as the live callback would have seen it.
    pub lines: Vec<ConsoleLine>,
    pub stderr_tail: Vec<String>,
    pub judgement: Judgement,
}

impl Transcript {
    /// All of `stdout` in one read at 10 ms; the boot ended at 100 ms (at
    /// the 10 s timeout for [`Exit::TimedOut`]).
    pub fn whole(stdout: &[u8], exit: Exit) -> Self {
        Transcript::in_reads(vec![(Duration::from_millis(10), stdout.to_vec())], exit)
    }

    /// `stdout` in these reads; the boot ended 90 ms after the last (at the
    /// 10 s timeout for [`Exit::TimedOut`]).
    pub fn in_reads(stdout: Vec<(Duration, Vec<u8>)>, exit: Exit) -> Self {
        let timeout = Duration::from_secs(10);
        let last = stdout.last().map_or(Duration::ZERO, |c| c.0);
        Transcript {
            stdout,
            stderr: Vec::new(),
            elapsed: if exit == Exit::TimedOut {
                timeout
            } else {
                last + Duration::from_millis(90)
            },
            exit,
            timeout,
            line_cap: MAX_LINE,
        }
    }

    /// `stdout` cut into reads at these byte offsets (sorted or not, out
    /// of range ignored), one ms apart.
    pub fn split_at(stdout: &[u8], cuts: &[usize], exit: Exit) -> Self {
        let mut cuts: Vec<usize> = cuts
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < stdout.len())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut reads = Vec::new();
        let mut from = 0;
        for (i, &c) in cuts
            .iter()
            .chain(std::iter::once(&stdout.len()))
            .enumerate()
        {
            reads.push((
                Duration::from_millis(1 + i as u64),
                stdout[from..c].to_vec(),
            ));
            from = c;
        }
        Transcript::in_reads(reads, exit)
    }

    /// Splits, classifies and judges, as a live boot does.
    pub fn classify(&self) -> Classified {
        let mut console = Console::new(TAIL_LINES);
        let mut lines = Vec::new();
        let mut r = BufReader::with_capacity(READ_BUFFER, Reads::new(&self.stdout));
        let mut buf = Vec::new();
        while let Ok(Some(end)) = read_chunk(&mut r, &mut buf, self.line_cap) {
            let at = r.get_ref().at;
            lines.push(console.push(&buf, at, end));
        }
        let mut err = BufReader::new(&self.stderr[..]);
        let mut stderr_tail: Vec<String> = Vec::new();
        while let Ok(Some(_)) = read_chunk(&mut err, &mut buf, STDERR_LINE) {
            push_tail(&mut stderr_tail, printable(&buf));
        }
        let judgement = verdict::judge(
            &console,
            &Ending {
                exit: &self.exit,
                stderr_tail: &stderr_tail,
                elapsed: self.elapsed,
                quiet: verdict::quiet_window(self.timeout),
            },
        );
        Classified {
            console,
            lines,
            stderr_tail,
            judgement,
        }
    }
}

/// A reader that returns the recorded reads one by one (never more than
/// one read's bytes per call, as a pipe would) and remembers when the
/// latest one arrived.
struct Reads<'a> {
    reads: &'a [(Duration, Vec<u8>)],
    next: usize,
    pos: usize,
    at: Duration,
}

impl<'a> Reads<'a> {
    fn new(reads: &'a [(Duration, Vec<u8>)]) -> Self {
        Reads {
            reads,
            next: 0,
            pos: 0,
            at: Duration::ZERO,
        }
    }
}

impl Read for Reads<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while let Some((at, bytes)) = self.reads.get(self.next) {
            if self.pos < bytes.len() {
                let n = out.len().min(bytes.len() - self.pos);
                out[..n].copy_from_slice(&bytes[self.pos..self.pos + n]);
                self.pos += n;
                self.at = *at;
                return Ok(n);
            }
            self.next += 1;
            self.pos = 0;
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;
    use stress::proto::{self, Frame, Record};

    fn probe() -> Vec<u8> {
        let recs = [
            Record::Hello {
                kernel: "0.1.0".into(),
                cpus: 1,
                mem_mib: 256,
                transport: "mmio".into(),
                cmdline: "mode=probe".into(),
            },
            Record::Ready {
                cpus: 1,
                boot_ns: 5,
            },
            Record::Done {
                verdict: proto::Verdict::Pass,
                ms: 1,
                stats: None,
            },
        ];
        let mut s = String::new();
        for (seq, rec) in recs.into_iter().enumerate() {
            s.push_str(&proto::encode(&Frame {
                seq: seq as u64,
                cpu: 0,
                rec,
            }));
            s.push('\n');
        }
        s.into_bytes()
    }

    #[test]
    fn one_read_or_many_the_lines_and_verdict_are_the_same() {
        let bytes = probe();
        let whole = Transcript::whole(&bytes, Exit::Status(33)).classify();
        assert_eq!(
            whole.judgement.verdict,
            Verdict::Pass,
            "{:?}",
            whole.judgement
        );
        let cuts: Vec<usize> = (1..bytes.len()).step_by(7).collect();
        let split = Transcript::split_at(&bytes, &cuts, Exit::Status(33)).classify();
        assert_eq!(split.judgement, whole.judgement);
        let texts = |c: &Classified| c.lines.iter().map(|l| l.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&split), texts(&whole));
        // Each line is stamped with the read that brought its newline.
        assert!(split.lines[0].at < split.lines[2].at);
    }

    #[test]
    fn the_line_cap_and_stderr_are_applied() {
        let mut t = Transcript::whole(&probe(), Exit::Status(33));
        t.line_cap = 64;
        let c = t.classify();
        assert_eq!(c.judgement.verdict, Verdict::Garbled, "{:?}", c.judgement);
        assert!(
            c.judgement.reason.contains("longer than 64 bytes"),
            "{:?}",
            c.judgement
        );
        let mut t = Transcript::whole(b"", Exit::Status(1));
        t.stderr = b"warning\nqemu: could not load kernel\n".to_vec();
        let c = t.classify();
        assert_eq!(c.judgement.verdict, Verdict::QemuFailed);
        assert!(c.judgement.reason.ends_with("could not load kernel"));
        assert_eq!(c.stderr_tail.len(), 2);
    }
}
