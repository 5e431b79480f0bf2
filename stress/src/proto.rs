//! The serial protocol between the unikernel and the runner, version 1.
//!
//! The console carries three kinds of lines:
//! - record lines: `@fs1 <json> ~<crc>` where `<json>` is a [`Frame`] and
//!   `<crc>` is the CRC-32 (IEEE) of the JSON text as 8 lowercase hex digits;
//! - KTAP lines for boot tests (see [`crate::ktap`]);
//! - diagnostics starting with `# `.
//!
//! Anything else is "other" text (firmware, QEMU). A line that starts like a
//! record but fails its checksum or does not parse is *garbled*: the runner
//! never reads a garbled console as a pass. Frames carry a per-boot sequence
//! number so that a lost line is visible as a gap.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::failure::Failure;
use crate::ktap::{self, KtapLine};
use crate::scenarios::{Knobs, ScenarioId};
use crate::stats::Stats;
use crate::trace::CpuTrace;
use crate::variant::Variant;

/// Protocol version carried by every record line.
pub const VERSION: u32 = 1;
/// Prefix of every record line of this version.
pub const PREFIX: &str = "@fs1 ";
/// Prefix shared by all versions (`@fs<N> `).
pub const FAMILY: &str = "@fs";

/// Exit codes the kernel writes to QEMU's `isa-debug-exit` port (0xf4).
/// QEMU turns byte `v` into process status `(v << 1) | 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything the kernel was asked to do passed.
    Pass = 0x10,
    /// A test or oracle failed (a stress failure is a *finding*, reported as Fail).
    Fail = 0x11,
    /// Kernel panic or unexpected CPU exception.
    Panic = 0x12,
    /// The kernel's own watchdog declared a hang.
    Hang = 0x13,
}

impl ExitCode {
    /// The QEMU process exit status this code produces.
    pub const fn qemu_status(self) -> i32 {
        ((self as i32) << 1) | 1
    }

    /// The code for a QEMU exit status, if it is one of ours.
    pub fn from_qemu_status(status: i32) -> Option<ExitCode> {
        [
            ExitCode::Pass,
            ExitCode::Fail,
            ExitCode::Panic,
            ExitCode::Hang,
        ]
        .into_iter()
        .find(|c| c.qemu_status() == status)
    }
}

/// The kernel's own verdict in its last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Pass,
    /// A check failed.
    Fail,
}

/// A CPU exception seen by the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// Vector number (14 = page fault, 8 = double fault, ...).
    pub vector: u8,
    /// Its name ("page fault").
    pub name: String,
    /// The error code pushed, if any.
    pub error_code: Option<u64>,
    /// Faulting instruction pointer.
    pub rip: u64,
    /// Stack pointer at the fault.
    pub rsp: u64,
    /// CR2 for page faults.
    pub cr2: Option<u64>,
    /// True when the fault address lies in a stack guard page.
    pub stack_guard: bool,
}

/// What one CPU was waiting on when the watchdog fired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuWait {
    /// The CPU.
    pub cpu: u32,
    /// Human-readable wait, e.g. "busy page obj 7 pindex 12" or "running".
    pub wait: String,
    /// Milliseconds since this CPU last made progress.
    pub stalled_ms: u64,
}

/// One record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// First record of every boot.
    Hello {
        /// Kernel package version.
        kernel: String,
        /// CPUs found in the ACPI MADT.
        cpus: u32,
        /// Usable memory in MiB.
        mem_mib: u32,
        /// Virtio transport found for the swap disk: "mmio", "pci" or "none".
        transport: String,
        /// The kernel command line as received.
        cmdline: String,
    },
    /// Every CPU checked in; `boot_ns` is the time from entry to now.
    Ready {
        /// CPUs that checked in.
        cpus: u32,
        /// Nanoseconds from entry to now.
        boot_ns: u64,
    },
    /// Periodic progress of a stress run.
    Progress {
        /// Milliseconds since the run started.
        ms: u64,
        /// Counters so far.
        stats: Stats,
    },
    /// An oracle caught a failure.
    Failure(Failure),
    /// The watchdog saw no progress for `ms` milliseconds.
    Hang {
        /// Longest stall, in ms.
        ms: u64,
        /// What every CPU waits on.
        waits: Vec<CpuWait>,
        /// Every CPU's last trace events.
        traces: Vec<CpuTrace>,
    },
    /// A kernel panic or an unexpected CPU exception.
    Panic {
        /// The CPU that panicked.
        cpu: u32,
        /// The panic message.
        message: String,
        /// The CPU exception, if one caused it.
        exception: Option<Exception>,
    },
    /// A named measurement (benchmarks), e.g. `virtio_read_bytes`.
    Measure {
        /// Measurement name.
        name: String,
        /// Its value.
        value: u64,
        /// "bytes", "ns", "count", ...
        unit: String,
    },
    /// Last record before the kernel exits: its own verdict.
    Done {
        /// The kernel's verdict.
        verdict: Verdict,
        /// Milliseconds since boot.
        ms: u64,
        /// Final counters (stress runs).
        stats: Option<Stats>,
    },
}

/// A record with its envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    /// Per-boot sequence number, from 0, one per record line.
    pub seq: u64,
    /// The CPU that wrote the line.
    pub cpu: u32,
    /// The record.
    pub rec: Record,
}

/// What a `mode=stress` boot runs: the request the runner writes on the
/// kernel command line and the kernel parses back, as
/// `mode=stress scenario=S variant=V seed=X duration_ms=D [progress_ms=P] [stall_ms=W]`.
///
/// [`fmt::Display`] writes those words (`progress_ms`/`stall_ms` only when
/// not the defaults); [`core::str::FromStr`] reads them from a whole kernel
/// command line, ignoring the words of other keys (microvm appends its
/// own). `scenario=` may be left out: the first scenario. Numbers are
/// decimal or `0x` hex with an optional K/M/G suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StressRequest {
    /// The variant (it names its scenario).
    pub variant: Variant,
    /// The seed of the workload's random streams.
    pub seed: u64,
    /// How long the workload runs.
    pub duration_ms: u64,
    /// Period of `Progress` records.
    pub progress_ms: u64,
    /// The watchdog declares a hang after this long without progress.
    pub stall_ms: u64,
    /// Workload knobs the scenario reads (`steer=0|1`).
    pub knobs: Knobs,
}

impl StressRequest {
    /// Default `progress_ms`.
    pub const PROGRESS_MS: u64 = 250;
    /// Default `stall_ms`.
    pub const STALL_MS: u64 = 3000;

    /// A request with the default progress and stall periods.
    pub fn new(variant: Variant, seed: u64, duration_ms: u64) -> Self {
        StressRequest {
            variant,
            seed,
            duration_ms,
            progress_ms: Self::PROGRESS_MS,
            stall_ms: Self::STALL_MS,
            knobs: Knobs::default(),
        }
    }

    /// The scenario it runs.
    pub fn scenario(&self) -> ScenarioId {
        self.variant.scenario_id()
    }
}

impl fmt::Display for StressRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mode=stress scenario={} variant={} seed={:#x} duration_ms={}",
            self.scenario(),
            self.variant,
            self.seed,
            self.duration_ms
        )?;
        if self.progress_ms != Self::PROGRESS_MS {
            write!(f, " progress_ms={}", self.progress_ms)?;
        }
        if self.stall_ms != Self::STALL_MS {
            write!(f, " stall_ms={}", self.stall_ms)?;
        }
        if !self.knobs.steer {
            f.write_str(" steer=0")?;
        }
        Ok(())
    }
}

/// Parses a number: decimal or `0x` hex, with an optional K/M/G suffix.
pub fn number(s: &str) -> Option<u64> {
    let (digits, scale) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let value = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    value.checked_mul(scale)
}

/// A number for `key`: positive unless `zero_ok`; the error says which key.
pub fn number_for(key: &str, value: &str, zero_ok: bool) -> Result<u64, String> {
    number(value).filter(|&n| zero_ok || n > 0).ok_or_else(|| {
        let what = if zero_ok {
            "a number"
        } else {
            "a positive number"
        };
        alloc::format!("bad {key}={value:?}: expected {what}")
    })
}

impl core::str::FromStr for StressRequest {
    /// One line saying what is wrong.
    type Err = String;

    fn from_str(line: &str) -> Result<Self, String> {
        let mut scenario = None;
        let mut variant = None;
        let mut seed = None;
        let mut duration_ms = None;
        let mut progress_ms = Self::PROGRESS_MS;
        let mut stall_ms = Self::STALL_MS;
        let mut knobs = Knobs::default();
        for word in line.split_ascii_whitespace() {
            let Some((key, value)) = word.split_once('=') else {
                continue;
            };
            match key {
                "mode" if value != "stress" => {
                    return Err(alloc::format!(
                        "mode={value:?} is not a stress request (mode=stress)"
                    ));
                }
                "scenario" => {
                    scenario = Some(
                        value
                            .parse::<ScenarioId>()
                            .map_err(|e| alloc::format!("bad scenario=: {e}"))?,
                    )
                }
                "variant" => variant = Some(value),
                "seed" => seed = Some(number_for(key, value, true)?),
                "duration_ms" => duration_ms = Some(number_for(key, value, false)?),
                "progress_ms" => progress_ms = number_for(key, value, false)?,
                "stall_ms" => stall_ms = number_for(key, value, false)?,
                "steer" => {
                    knobs.steer = match value {
                        "0" => false,
                        "1" => true,
                        _ => return Err(alloc::format!("bad steer={value:?}: expected 0 or 1")),
                    }
                }
                _ => {}
            }
        }
        let scenario = scenario.unwrap_or_default();
        let variant = variant.ok_or("mode=stress needs variant=NAME")?;
        let variant = scenario
            .variant_or_err(variant)
            .map_err(|e| alloc::format!("bad variant=: {e}"))?;
        Ok(StressRequest {
            variant,
            seed: seed.ok_or("mode=stress needs seed=N")?,
            duration_ms: duration_ms.ok_or("mode=stress needs duration_ms=N")?,
            progress_ms,
            stall_ms,
            knobs,
        })
    }
}

/// CRC-32 (ISO-HDLC, the zlib one) of a record's JSON, computed a byte at
/// a time from one 256-entry table made at compile time: a handful of
/// instructions, where a slice-by-16 routine is hundreds that the first
/// record of every boot makes QEMU's TCG translate (measured with
/// `qemu -d in_asm`: 355 of the probe boot's 9,297).
fn checksum(json: &str) -> u32 {
    const CRC32: crc::Crc<u32, crc::Table<1>> =
        crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
    CRC32.checksum(json.as_bytes())
}

/// Encodes one record line (without the trailing newline).
pub fn encode(frame: &Frame) -> String {
    let json = serde_json::to_string(frame).unwrap_or_default();
    let crc = checksum(&json);
    // Assembled by hand rather than with `format!`: the formatting
    // machinery (padding, hex) is more code for TCG to translate at the
    // first record of every boot than the line is worth.
    let mut line = String::with_capacity(PREFIX.len() + json.len() + 10);
    line.push_str(PREFIX);
    line.push_str(&json);
    line.push_str(" ~");
    push_hex8(&mut line, crc);
    line
}

/// Appends `v` as 8 lowercase hex digits, leading zeros kept (`{:08x}`).
fn push_hex8(s: &mut String, v: u32) {
    for nibble in (0..8).rev().map(|i| (v >> (4 * i)) & 0xf) {
        s.push(char::from_digit(nibble, 16).unwrap_or('0'));
    }
}

/// Why a record line was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Garble {
    /// `@fs<N>` with N other than [`VERSION`].
    Version(String),
    /// No ` ~xxxxxxxx` trailer.
    NoChecksum,
    /// The checksum does not match the JSON.
    BadChecksum,
    /// The JSON does not parse as a [`Frame`]: the serde error.
    Json(String),
    /// Control characters or invalid UTF-8 in the line.
    Binary,
}

/// One classified console line. (Transient: made and matched line by line,
/// so the size of the `Record` variant does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Line<'a> {
    /// A protocol record line.
    Record(Frame),
    /// A KTAP line.
    Ktap(KtapLine<'a>),
    /// `# ...` (the text after `#`, trimmed).
    Diag(&'a str),
    /// A line that claims to be a record but is not a valid one.
    Garbled(Garble),
    /// Empty line.
    Blank,
    /// Any other printable text.
    Other(&'a str),
}

/// Classifies one console line (without its newline; a trailing `\r` is ignored).
pub fn parse(line: &str) -> Line<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix(FAMILY) {
        let (ver, body) = rest.split_once(' ').unwrap_or((rest, ""));
        if ver != "1" {
            return Line::Garbled(Garble::Version(ver.into()));
        }
        let Some((json, crc)) = body.rsplit_once(" ~") else {
            return Line::Garbled(Garble::NoChecksum);
        };
        // Exactly what `encode` writes: 8 lowercase hex digits.
        let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if crc.len() != 8 || !crc.bytes().all(hex) {
            return Line::Garbled(Garble::NoChecksum);
        }
        let Ok(crc) = u32::from_str_radix(crc, 16) else {
            return Line::Garbled(Garble::NoChecksum);
        };
        if checksum(json) != crc {
            return Line::Garbled(Garble::BadChecksum);
        }
        return match serde_json::from_str::<Frame>(json) {
            Ok(f) => Line::Record(f),
            Err(e) => Line::Garbled(Garble::Json(alloc::format!("{e}"))),
        };
    }
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Line::Garbled(Garble::Binary);
    }
    if line.trim().is_empty() {
        return Line::Blank;
    }
    if let Some(k) = ktap::parse(line) {
        return Line::Ktap(k);
    }
    if let Some(d) = line.strip_prefix('#') {
        return Line::Diag(d.trim());
    }
    Line::Other(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::FailureKind;
    use crate::scenarios::d15293;
    use crate::trace::{Ev, TraceEvent};

    fn frames() -> Vec<Frame> {
        let failure = Failure {
            kind: FailureKind::Repopulated,
            seed: 0xfeed,
            scenario: ScenarioId::DEFAULT,
            variant: d15293::BASELINE,
            cpu: 1,
            ms: 12,
            detail: "pindex 3 moved twice".into(),
            traces: alloc::vec![CpuTrace {
                cpu: 1,
                events: alloc::vec![TraceEvent {
                    t: 5,
                    ev: Ev::SplitRestart,
                    obj: 2,
                    pindex: 0,
                    arg: 0
                }],
            }],
        };
        let recs = alloc::vec![
            Record::Hello {
                kernel: "0.1.0".into(),
                cpus: 4,
                mem_mib: 256,
                transport: "mmio".into(),
                cmdline: "mode=tests".into()
            },
            Record::Ready {
                cpus: 4,
                boot_ns: 12_000_000
            },
            Record::Progress {
                ms: 100,
                stats: Stats {
                    forks: 3,
                    ..Stats::default()
                }
            },
            Record::Failure(failure),
            Record::Hang {
                ms: 2000,
                waits: alloc::vec![CpuWait {
                    cpu: 0,
                    wait: "pip obj 3".into(),
                    stalled_ms: 2000
                }],
                traces: alloc::vec![]
            },
            Record::Panic {
                cpu: 2,
                message: "page fault".into(),
                exception: Some(Exception {
                    vector: 14,
                    name: "page fault".into(),
                    error_code: Some(2),
                    rip: 0x1000,
                    rsp: 0x2000,
                    cr2: Some(0xdead000),
                    stack_guard: false
                })
            },
            Record::Done {
                verdict: Verdict::Pass,
                ms: 3000,
                stats: None
            },
        ];
        recs.into_iter()
            .enumerate()
            .map(|(i, rec)| Frame {
                seq: i as u64,
                cpu: 0,
                rec,
            })
            .collect()
    }

    /// The trailer is zlib's CRC-32 (the check value of the catalogue), in
    /// 8 lowercase hex digits, leading zeros kept.
    #[test]
    fn the_checksum_is_crc32_in_eight_lowercase_digits() {
        assert_eq!(checksum("123456789"), 0xcbf4_3926);
        let line = encode(&frames()[0]);
        let (json, crc) = line[PREFIX.len()..].rsplit_once(" ~").expect("trailer");
        assert_eq!(crc, alloc::format!("{:08x}", checksum(json)));
        for v in [0, 0xf, 0xabc, 0x0bad_cafe, 0xcbf4_3926, u32::MAX] {
            let mut hex = String::new();
            push_hex8(&mut hex, v);
            assert_eq!(hex, alloc::format!("{v:08x}"));
        }
    }

    #[test]
    fn every_record_roundtrips() {
        for f in frames() {
            let line = encode(&f);
            assert!(line.starts_with(PREFIX));
            assert_eq!(parse(&line), Line::Record(f.clone()), "{line}");
            assert_eq!(parse(&alloc::format!("{line}\r")), Line::Record(f));
        }
    }

    #[test]
    fn damaged_records_are_garbled() {
        let line = encode(&frames()[1]);
        // One flipped character in the JSON.
        let bad = line.replacen("cpus", "cpuz", 1);
        assert_eq!(parse(&bad), Line::Garbled(Garble::BadChecksum));
        // Cut mid-line by a crash.
        let cut = &line[..line.len() / 2];
        assert!(matches!(parse(cut), Line::Garbled(_)), "{cut}");
        assert_eq!(
            parse("@fs2 {} ~00000000"),
            Line::Garbled(Garble::Version("2".into()))
        );
        // Checksum right but JSON not a frame.
        let json = "{\"x\":1}";
        let l = alloc::format!("@fs1 {json} ~{:08x}", checksum(json));
        assert!(matches!(parse(&l), Line::Garbled(Garble::Json(_))));
        assert_eq!(parse("abc\u{1}def"), Line::Garbled(Garble::Binary));
        // The checksum is exactly 8 lowercase hex digits, as encoded.
        let good = encode(&frames()[0]);
        let (body, crc) = good.rsplit_once(" ~").unwrap();
        for bad in [
            alloc::format!("{body} ~+{crc}"),
            alloc::format!("{body} ~0{crc}"),
            alloc::format!("{body} ~{}", &crc[1..]),
        ] {
            assert_eq!(parse(&bad), Line::Garbled(Garble::NoChecksum), "{bad}");
        }
        let upper = alloc::format!("{body} ~{}", crc.to_uppercase());
        if upper != good {
            assert_eq!(parse(&upper), Line::Garbled(Garble::NoChecksum), "{upper}");
        }
    }

    #[test]
    fn other_lines() {
        assert_eq!(parse("KTAP version 1"), Line::Ktap(KtapLine::Version(1)));
        assert_eq!(parse("# hello"), Line::Diag("hello"));
        assert_eq!(parse(""), Line::Blank);
        assert_eq!(parse("SeaBIOS"), Line::Other("SeaBIOS"));
    }

    #[test]
    fn stress_requests_roundtrip() {
        for v in Variant::all() {
            for (seed, progress_ms, stall_ms) in [(0, 250, 3000), (u64::MAX, 100, 500)] {
                let r = StressRequest {
                    progress_ms,
                    stall_ms,
                    ..StressRequest::new(v, seed, 1500)
                };
                let line = alloc::format!("{r}");
                assert_eq!(line.parse::<StressRequest>(), Ok(r), "{line}");
                // The words of other keys on a kernel command line are ignored.
                let kernel = alloc::format!("console=ttyS0 {line} virtio_mmio.device=4K@0x1000:5");
                assert_eq!(kernel.parse::<StressRequest>(), Ok(r), "{kernel}");
            }
        }
        let r: StressRequest = "mode=stress variant=swap-prealloc seed=42 duration_ms=2K"
            .parse()
            .unwrap();
        assert_eq!(r, StressRequest::new(d15293::SWAP_PREALLOC, 42, 2048));
        assert_eq!(
            alloc::format!("{r}"),
            "mode=stress scenario=d15293 variant=swap-prealloc seed=0x2a duration_ms=2048"
        );
    }

    #[test]
    fn bad_stress_requests_say_what_is_wrong() {
        for (line, says) in [
            ("mode=stress seed=1 duration_ms=1", "needs variant"),
            ("mode=stress variant=baseline duration_ms=1", "needs seed"),
            ("mode=stress variant=baseline seed=1", "needs duration_ms"),
            (
                "mode=stress variant=baseline seed=1 duration_ms=0",
                "duration_ms",
            ),
            (
                "mode=stress variant=baseline seed=x1 duration_ms=1",
                "bad seed=\"x1\"",
            ),
            (
                "mode=stress variant=nope seed=1 duration_ms=1",
                "swap-prealloc",
            ),
            (
                "mode=stress scenario=nope variant=baseline seed=1 duration_ms=1",
                "unknown scenario 'nope'",
            ),
            (
                "mode=stress variant=baseline seed=1 duration_ms=1 stall_ms=0",
                "stall_ms",
            ),
            (
                "mode=probe variant=baseline seed=1 duration_ms=1",
                "not a stress request",
            ),
        ] {
            let e = line.parse::<StressRequest>().unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(ExitCode::Pass.qemu_status(), 33);
        assert_eq!(ExitCode::from_qemu_status(35), Some(ExitCode::Fail));
        assert_eq!(ExitCode::from_qemu_status(0), None);
    }
}
