//! The kernel command line (QEMU `-append`, plus what microvm appends):
//! space-separated `key=value` words, parsed into a [`Cmdline`]. Unknown keys
//! are ignored; a missing or unknown mode or a bad value is an error whose
//! message says what was wrong (the kernel reports it as a Panic record).
//!
//! Pure logic, tested on the host.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use stress::proto::{StressRequest, number};

/// Boot tests, in the order they run and are numbered.
pub use stress::ktap::BOOT_TESTS as TESTS;

/// Deliberate failures of `mode=crash kind=…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    Panic,
    PageFault,
    StackOverflow,
    Exception,
    TripleFault,
    Hang,
    HangSilent,
    Garbage,
    EarlyExit,
    Cut,
}

impl CrashKind {
    /// Every kind with its command-line name.
    pub const ALL: [(&'static str, CrashKind); 10] = [
        ("panic", CrashKind::Panic),
        ("pagefault", CrashKind::PageFault),
        ("stackoverflow", CrashKind::StackOverflow),
        ("exception", CrashKind::Exception),
        ("triplefault", CrashKind::TripleFault),
        ("hang", CrashKind::Hang),
        ("hang-silent", CrashKind::HangSilent),
        ("garbage", CrashKind::Garbage),
        ("early-exit", CrashKind::EarlyExit),
        ("cut", CrashKind::Cut),
    ];

    fn parse(s: &str) -> Option<CrashKind> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|&(_, k)| k)
    }
}

/// What the kernel was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Bring up every CPU, report, exit.
    Probe,
    /// Run the boot tests named (a subset of [`TESTS`], in [`TESTS`] order).
    Tests { tests: Vec<&'static str> },
    /// Fail deliberately, on CPU `cpu` (default 0).
    Crash { kind: CrashKind, cpu: usize },
    /// Run a scenario's stress workload on every CPU.
    Stress(StressRequest),
    /// Measure sequential virtio-blk reads of `mib` MiB.
    DiskBench { mib: u64 },
}

/// A virtio-mmio device announced by microvm: `virtio_mmio.device=<size>@<base>:<irq>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioMmio {
    pub base: u64,
    pub size: u64,
    pub irq: u32,
}

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmdline {
    pub mode: Mode,
    /// `expect_cpus=N`: the number of CPUs the runner asked QEMU for.
    pub expect_cpus: Option<usize>,
    pub virtio_mmio: Vec<VirtioMmio>,
    /// `boot_timeline=1`: print the boot timeline once the boot is over
    /// (`arch::timeline`); `boot_timeline=0` or absent: do not.
    pub boot_timeline: bool,
}

/// A number for `key`: positive unless `zero_ok`.
fn positive(key: &str, value: &str, zero_ok: bool) -> Result<u64, String> {
    stress::proto::number_for(key, value, zero_ok)
}

fn virtio_mmio(value: &str) -> Option<VirtioMmio> {
    let (size, rest) = value.split_once('@')?;
    let (base, rest) = rest.split_once(':')?;
    let irq = rest.split(':').next()?;
    Some(VirtioMmio {
        base: number(base)?,
        size: number(size)?,
        irq: irq.parse().ok()?,
    })
}

/// Parses the command line.
pub fn parse(line: &str) -> Result<Cmdline, String> {
    let mut mode = None;
    let mut tests = None;
    let mut kind = None;
    let mut crash_cpu = 0;
    let mut expect_cpus = None;
    let mut devices = Vec::new();
    let mut mib = 32;
    let mut boot_timeline = false;
    for word in line.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "mode" => mode = Some(value),
            "tests" => {
                let mut wanted = Vec::new();
                for name in value.split(',').filter(|n| !n.is_empty()) {
                    if !TESTS.contains(&name) {
                        return Err(format!(
                            "unknown test {name:?} in tests= (known: {})",
                            TESTS.join(", ")
                        ));
                    }
                    wanted.push(name);
                }
                tests = Some(
                    TESTS
                        .iter()
                        .copied()
                        .filter(|t| wanted.contains(t))
                        .collect::<Vec<_>>(),
                );
            }
            "kind" => kind = Some(value),
            "cpu" => {
                crash_cpu = value
                    .parse()
                    .map_err(|_| format!("bad cpu={value:?}: expected a CPU index"))?
            }
            "expect_cpus" => {
                expect_cpus = Some(value.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(
                    || format!("bad expect_cpus={value:?}: expected a positive number"),
                )?)
            }
            "mib" => mib = positive(key, value, false)?,
            "boot_timeline" => {
                boot_timeline = match value {
                    "1" => true,
                    "0" => false,
                    _ => return Err(format!("bad boot_timeline={value:?}: expected 0 or 1")),
                }
            }
            "virtio_mmio.device" => devices.push(virtio_mmio(value).ok_or_else(|| {
                format!("bad virtio_mmio.device={value:?}: expected <size>@<base>:<irq>")
            })?),
            _ => {}
        }
    }
    let mode = match mode {
        None => {
            return Err(
                "no mode= on the kernel command line (expected probe, tests, crash, stress or diskbench)"
                    .into(),
            );
        }
        Some("probe") => Mode::Probe,
        Some("tests") => Mode::Tests {
            tests: tests.unwrap_or_else(|| TESTS.to_vec()),
        },
        Some("crash") => {
            let kind = kind.ok_or("mode=crash needs kind=K")?;
            let kind = CrashKind::parse(kind).ok_or_else(|| {
                let names: Vec<&str> = CrashKind::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown crash kind={kind:?} (known: {})", names.join(", "))
            })?;
            Mode::Crash {
                kind,
                cpu: crash_cpu,
            }
        }
        // The stress request's own words (scenario, variant, seed, ...) are
        // parsed by the request type the runner wrote them with.
        Some("stress") => Mode::Stress(line.parse::<StressRequest>()?),
        Some("diskbench") => Mode::DiskBench { mib },
        Some(other) => {
            return Err(format!(
                "unknown mode={other:?} (expected probe, tests, crash, stress or diskbench)"
            ));
        }
    };
    Ok(Cmdline {
        mode,
        expect_cpus,
        virtio_mmio: devices,
        boot_timeline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn probe_with_microvm_devices() {
        let c = parse("mode=probe foo=bar virtio_mmio.device=512@0xfeb02e00:12 virtio_mmio.device=4K@0xfeb03000:13:2")
            .unwrap();
        assert_eq!(c.mode, Mode::Probe);
        assert_eq!(
            c.virtio_mmio,
            vec![
                VirtioMmio {
                    base: 0xfeb0_2e00,
                    size: 512,
                    irq: 12
                },
                VirtioMmio {
                    base: 0xfeb0_3000,
                    size: 4096,
                    irq: 13
                },
            ]
        );
        assert_eq!(c.expect_cpus, None);
    }

    #[test]
    fn tests_subset_in_canonical_order() {
        let c = parse("mode=tests tests=timer_ticks,cpus_check_in expect_cpus=4").unwrap();
        assert_eq!(
            c.mode,
            Mode::Tests {
                tests: vec!["cpus_check_in", "timer_ticks"]
            }
        );
        assert_eq!(c.expect_cpus, Some(4));
        let all = parse("mode=tests").unwrap();
        assert_eq!(
            all.mode,
            Mode::Tests {
                tests: TESTS.to_vec()
            }
        );
    }

    #[test]
    fn crash_kinds() {
        for (name, kind) in CrashKind::ALL {
            let c = parse(&format!("mode=crash kind={name}")).unwrap();
            assert_eq!(c.mode, Mode::Crash { kind, cpu: 0 });
        }
        let c = parse("mode=crash kind=pagefault cpu=3").unwrap();
        assert_eq!(
            c.mode,
            Mode::Crash {
                kind: CrashKind::PageFault,
                cpu: 3
            }
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse("").unwrap_err().contains("no mode="));
        assert!(
            parse("mode=fly")
                .unwrap_err()
                .contains("unknown mode=\"fly\"")
        );
        assert!(parse("mode=crash").unwrap_err().contains("kind"));
        assert!(parse("mode=crash kind=boom").unwrap_err().contains("boom"));
        assert!(parse("mode=tests tests=nope").unwrap_err().contains("nope"));
        assert!(
            parse("mode=tests expect_cpus=zero")
                .unwrap_err()
                .contains("expect_cpus")
        );
        assert!(parse("mode=tests expect_cpus=0").is_err());
        assert!(
            parse("mode=probe virtio_mmio.device=junk")
                .unwrap_err()
                .contains("virtio_mmio")
        );
    }

    #[test]
    fn stress_arguments() {
        let c = parse("mode=stress variant=swap-prealloc seed=0x2a duration_ms=5000 stall_ms=2000")
            .unwrap();
        assert_eq!(
            c.mode,
            Mode::Stress(StressRequest {
                stall_ms: 2000,
                ..StressRequest::new(stress::scenarios::d15293::SWAP_PREALLOC, 42, 5000)
            })
        );
        let e =
            parse("mode=stress scenario=nope variant=baseline seed=1 duration_ms=1").unwrap_err();
        assert!(e.contains("unknown scenario 'nope'"), "{e}");
        let c = parse("mode=stress variant=baseline seed=1 duration_ms=5 steer=0").unwrap();
        assert!(matches!(c.mode, Mode::Stress(StressRequest { knobs, .. }) if !knobs.steer));
        assert!(
            parse("mode=stress variant=baseline seed=1 duration_ms=5 steer=on")
                .unwrap_err()
                .contains("steer")
        );
        assert!(
            parse("mode=stress seed=1 duration_ms=1")
                .unwrap_err()
                .contains("variant")
        );
        let e = parse("mode=stress variant=nope seed=1 duration_ms=1").unwrap_err();
        assert!(e.contains("nope") && e.contains("swap-prealloc"), "{e}");
        assert!(
            parse("mode=stress variant=baseline duration_ms=1")
                .unwrap_err()
                .contains("seed")
        );
        assert!(
            parse("mode=stress variant=baseline seed=1 duration_ms=0")
                .unwrap_err()
                .contains("duration_ms")
        );
        assert_eq!(
            parse("mode=diskbench").unwrap().mode,
            Mode::DiskBench { mib: 32 }
        );
        assert_eq!(
            parse("mode=diskbench mib=8").unwrap().mode,
            Mode::DiskBench { mib: 8 }
        );
    }

    #[test]
    fn boot_timeline_flag() {
        assert!(!parse("mode=probe").unwrap().boot_timeline);
        assert!(parse("mode=probe boot_timeline=1").unwrap().boot_timeline);
        assert!(!parse("mode=probe boot_timeline=0").unwrap().boot_timeline);
        assert!(
            parse("mode=probe boot_timeline=yes")
                .unwrap_err()
                .contains("boot_timeline")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number("512"), Some(512));
        assert_eq!(number("0x200"), Some(512));
        assert_eq!(number("4K"), Some(4096));
        assert_eq!(number("1M"), Some(1 << 20));
        assert_eq!(number(""), None);
        assert_eq!(number("0xZZ"), None);
    }
}
