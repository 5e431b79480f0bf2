//! `cargo xtask bench stress`: the throughput of one stress boot (window
//! hits/s, faults/s, forks/s, swap-in MB/s = swapin_pages × 4096 / run
//! time), and the guest's virtio-blk read rate (`mode=diskbench`) beside the
//! host's read rate of the very image file the guest wrote: cold (after
//! fsync and `posix_fadvise(DONTNEED)` drop the file's pages from the host
//! page cache) and warm (read again).
//!
//! Exit status: 0 when both boots gave their figures, 3 otherwise.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use stress::proto::Record;

use super::Ctx;
use crate::accel::fmt_rate;
use crate::boot::{self, BootOutcome, BootSpec};
use crate::cli::BenchStressArgs;
use crate::disk::SwapDisk;
use crate::error::{EXIT_INFRA, EXIT_OK, Result};
use crate::stressrun::{BootResult, Outcome, StressSpec, resolve_accel, secs_arg};

/// Bytes of a page (the swap block).
const PAGE: u64 = 4096;
/// Read size of the host read (the guest reads 128 KiB per request too).
const CHUNK: usize = 128 << 10;
/// Timeout of the disk benchmark boot.
const DISKBENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Throughput of a stress boot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StressRates {
    pub window_hits_per_s: f64,
    pub faults_per_s: f64,
    pub forks_per_s: f64,
    /// Swap-in bytes per second through virtio-blk.
    pub swapin_bytes_per_s: f64,
}

/// The rates of a boot that reported counters and a run time.
pub fn stress_rates(r: &BootResult) -> Option<StressRates> {
    let (st, ms) = (r.stats.as_ref()?, r.run_ms?);
    if ms == 0 {
        return None;
    }
    let per_s = |n: u64| n as f64 * 1e3 / ms as f64;
    Some(StressRates {
        window_hits_per_s: per_s(st.window_hits),
        faults_per_s: per_s(st.faults),
        forks_per_s: per_s(st.forks),
        swapin_bytes_per_s: per_s(st.swapin_pages * PAGE),
    })
}

/// The guest's read bytes and nanoseconds from the diskbench Measure records.
pub fn virtio_read(out: &BootOutcome) -> Option<(u64, u64)> {
    let get = |name: &str| {
        out.console.records().find_map(|r| match r {
            Record::Measure { name: n, value, .. } if n == name => Some(*value),
            _ => None,
        })
    };
    Some((get("virtio_read_bytes")?, get("virtio_read_ns")?))
}

/// MB/s (10^6 bytes).
pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    if d.is_zero() {
        return 0.0;
    }
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Reads the first `bytes` of `path` in 128 KiB reads; the time it took.
/// `cold`: first flush the file and drop its cached pages.
pub fn host_read(path: &Path, bytes: u64, cold: bool) -> anyhow::Result<Duration> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    if cold {
        f.sync_all()
            .with_context(|| format!("cannot fsync {}", path.display()))?;
        posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
            .with_context(|| format!("posix_fadvise(DONTNEED) on {}", path.display()))?;
    }
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes;
    let t = Instant::now();
    while left > 0 {
        let want = (left as usize).min(CHUNK);
        f.read_exact(&mut buf[..want])
            .with_context(|| format!("cannot read {}", path.display()))?;
        left -= want as u64;
    }
    Ok(t.elapsed())
}

pub fn run(ctx: &Ctx, a: &BenchStressArgs) -> Result<u8> {
    let variant = a.variant()?;
    let kernel = ctx.kernel()?;
    let qemu = ctx.qemu()?;
    let b = &a.boot;
    let accel = resolve_accel(b, &kernel, &qemu).accel;
    let spec = StressSpec::from_args(b, variant, a.seed, accel, ctx.kernel.clone());
    eprintln!(
        "bench stress: booting `{}` on {}",
        spec.append(),
        spec.label()
    );
    let t = Instant::now();
    let out = boot::boot(&spec.boot_spec(kernel.clone(), qemu.clone()), &mut |_| {});
    let r = BootResult::from_outcome(&spec, &out, t.elapsed());
    let rates = stress_rates(&r);

    // The disk benchmark, on a disk file that outlives the boot.
    let disk_mib = a.mib.max(crate::disk::DEFAULT_MIB);
    let disk = SwapDisk::create(disk_mib << 20)?;
    let dspec = BootSpec {
        disk_bytes: None,
        disk_file: Some(disk.path().to_path_buf()),
        ..BootSpec::new(
            b.machine,
            1,
            accel,
            format!("mode=diskbench mib={}", a.mib),
            DISKBENCH_TIMEOUT,
            kernel,
            qemu,
        )
    };
    eprintln!(
        "bench stress: booting `{}` on {}",
        dspec.append,
        dspec.label()
    );
    let dout = boot::boot(&dspec, &mut |_| {});
    let guest = (*dout.verdict() == crate::verdict::Verdict::Pass)
        .then(|| virtio_read(&dout))
        .flatten();
    let host = match guest {
        Some((bytes, _)) => Some((
            host_read(disk.path(), bytes, true)?,
            host_read(disk.path(), bytes, false)?,
        )),
        None => None,
    };

    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(["measure", "value", "how"]);
    let run = r
        .run_ms
        .map_or("-".into(), |ms| format!("{:.2} s", ms as f64 / 1e3));
    let how = format!(
        "{} seed {} on {}, {} run of {} s requested ({}), outcome {}",
        spec.variant,
        crate::seed::show(spec.seed),
        spec.label(),
        run,
        secs_arg(spec.duration),
        r.verdict,
        r.outcome
    );
    match rates {
        Some(s) => {
            t.add_row([
                "window hits/s".to_string(),
                format!("{:.1}", s.window_hits_per_s),
                how.clone(),
            ]);
            t.add_row([
                "faults/s".to_string(),
                fmt_rate(s.faults_per_s),
                how.clone(),
            ]);
            t.add_row([
                "forks/s".to_string(),
                format!("{:.1}", s.forks_per_s),
                how.clone(),
            ]);
            t.add_row([
                "swap-in MB/s".to_string(),
                format!("{:.2}", s.swapin_bytes_per_s / 1e6),
                "swapin_pages × 4096 / run time".to_string(),
            ]);
        }
        None => {
            t.add_row([
                "stress".to_string(),
                "-".to_string(),
                format!("no counters: {}", r.reason),
            ]);
        }
    }
    match (guest, host) {
        (Some((bytes, ns)), Some((cold, warm))) => {
            let guest_d = Duration::from_nanos(ns);
            t.add_row([
                "virtio-blk read MB/s (guest)".to_string(),
                format!("{:.1}", mb_per_s(bytes, guest_d)),
                format!(
                    "{} MiB sequential in 128 KiB requests, QEMU cache=unsafe (host page cache), {}",
                    bytes >> 20,
                    dspec.label()
                ),
            ]);
            t.add_row([
                "host read MB/s, cold".to_string(),
                format!("{:.1}", mb_per_s(bytes, cold)),
                "the same image file after fsync + posix_fadvise(DONTNEED), 128 KiB reads"
                    .to_string(),
            ]);
            t.add_row([
                "host read MB/s, warm".to_string(),
                format!("{:.1}", mb_per_s(bytes, warm)),
                "read again (from the host page cache)".to_string(),
            ]);
        }
        _ => {
            t.add_row([
                "virtio-blk read".to_string(),
                "-".to_string(),
                format!(
                    "diskbench boot: {}: {}",
                    dout.verdict(),
                    dout.judgement.reason
                ),
            ]);
        }
    }
    println!("{t}");
    if r.outcome != Outcome::Clean {
        println!(
            "note: the stress boot was {} ({}), its rates are still shown",
            r.outcome, r.reason
        );
    }
    Ok(if rates.is_some() && guest.is_some() {
        EXIT_OK
    } else {
        EXIT_INFRA
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, result};
    use crate::verdict::Exit;
    use stress::scenarios::d15293;

    #[test]
    fn rates_come_from_the_counters_and_the_run_time() {
        // testkit: 100 faults, 10 forks, 80 swap-in pages, 1000 ms.
        let r = result(d15293::SWAP_PREALLOC, Outcome::Clean, 5);
        let s = stress_rates(&r).expect("rates");
        assert_eq!(s.faults_per_s, 100.0);
        assert_eq!(s.forks_per_s, 10.0);
        assert_eq!(s.window_hits_per_s, 5.0);
        assert_eq!(s.swapin_bytes_per_s, 80.0 * 4096.0);
        assert_eq!(
            stress_rates(&result(d15293::SWAP_PREALLOC, Outcome::Infra, 0)),
            None
        );
        assert_eq!(mb_per_s(2_000_000, Duration::from_millis(500)), 4.0);
        assert_eq!(mb_per_s(1, Duration::ZERO), 0.0);
    }

    #[test]
    fn guest_read_rate_from_measure_records() {
        let m = |name: &str, value| Record::Measure {
            name: name.into(),
            value,
            unit: "x".into(),
        };
        let out = testkit::outcome(
            vec![
                testkit::hello(),
                testkit::ready(),
                m("virtio_read_bytes", 32 << 20),
                m("virtio_read_ns", 1_000_000),
                testkit::done(true, 5, None),
            ],
            Exit::Status(33),
        );
        assert_eq!(virtio_read(&out), Some((32 << 20, 1_000_000)));
        let none = testkit::outcome(vec![testkit::hello()], Exit::Status(33));
        assert_eq!(virtio_read(&none), None);
    }

    #[test]
    fn host_read_reads_the_file_cold_and_warm() {
        let dir = tempfile::tempdir().expect("dir");
        let p = dir.path().join("img");
        std::fs::write(&p, vec![7u8; 1 << 20]).expect("write");
        assert!(host_read(&p, 1 << 20, true).is_ok());
        assert!(host_read(&p, 1 << 20, false).is_ok());
        assert!(
            host_read(&p, 2 << 20, false).is_err(),
            "reading past the end"
        );
    }
}
