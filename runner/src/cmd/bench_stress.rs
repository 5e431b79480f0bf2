//! `cargo xtask bench stress`: the throughput of a stress boot with the
//! workload steered toward the window and of the same boot unsteered, side
//! by side (window hits/s, window hits per fork, faults/s, forks/s, swap-in
//! MB/s = swapin_pages × 4096 / run time), and the guest's virtio-blk read rate (`mode=diskbench`) beside the
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
use crate::stress_result::{BootResult, Outcome};
use crate::stress_spec::{StressSpec, resolve_accel, secs_arg};

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
    /// Window hits per completed fork (`None` without a fork).
    pub hits_per_fork: Option<f64>,
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
        hits_per_fork: (st.forks > 0).then(|| st.window_hits as f64 / st.forks as f64),
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
    // The same boot unsteered and steered (`--steer` does not apply here).
    let runs: Vec<(StressSpec, BootResult)> = [false, true]
        .into_iter()
        .map(|steer| {
            let spec = StressSpec {
                steer,
                ..StressSpec::from_args(b, variant, a.seed, accel, ctx.kernel.clone())
            };
            eprintln!(
                "bench stress: booting `{}` on {}",
                spec.append(),
                spec.label()
            );
            let t = Instant::now();
            let out = boot::boot(&spec.boot_spec(kernel.clone(), qemu.clone()), &mut |_| {});
            let r = BootResult::from_outcome(&spec, &out, t.elapsed());
            (spec, r)
        })
        .collect();
    let spec = &runs[1].0;

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

    let rates: Vec<Option<StressRates>> = runs.iter().map(|(_, r)| stress_rates(r)).collect();
    let mut text = format!("{}\n", rates_table(spec, &runs, &rates));
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(["measure", "value", "how"]);
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
    text.push_str(&format!("{t}\n"));
    for (spec, r) in &runs {
        if r.outcome != Outcome::Clean {
            text.push_str(&format!(
                "note: the stress boot with steer={} was {} ({}), its rates are still shown\n",
                u8::from(spec.steer),
                r.outcome,
                r.reason
            ));
        }
    }
    let printed = crate::out::stdout(&text);
    let code = if rates.iter().all(Option::is_some) && guest.is_some() {
        EXIT_OK
    } else {
        EXIT_INFRA
    };
    Ok(crate::out::exit_status(printed, code))
}

/// The stress rates, one column per run (steer off, steer on).
pub fn rates_table(
    spec: &StressSpec,
    runs: &[(StressSpec, BootResult)],
    rates: &[Option<StressRates>],
) -> Table {
    let mut t = Table::new();
    let mut header = vec!["measure".to_string()];
    header.extend(
        runs.iter()
            .map(|(s, _)| format!("steer {}", if s.steer { "on" } else { "off" })),
    );
    t.load_style(UTF8_FULL_CONDENSED).set_header(header);
    type Cell = fn(&StressRates) -> String;
    let rows: [(&str, Cell); 5] = [
        ("window hits/s", |s| format!("{:.1}", s.window_hits_per_s)),
        ("window hits per fork", |s| {
            s.hits_per_fork.map_or("-".into(), |h| format!("{h:.3}"))
        }),
        ("faults/s", |s| fmt_rate(s.faults_per_s)),
        ("forks/s", |s| format!("{:.1}", s.forks_per_s)),
        ("swap-in MB/s", |s| {
            format!("{:.2}", s.swapin_bytes_per_s / 1e6)
        }),
    ];
    for (name, cell) in rows {
        let mut row = vec![name.to_string()];
        row.extend(rates.iter().map(|r| r.as_ref().map_or("-".into(), cell)));
        t.add_row(row);
    }
    let mut row = vec!["run".to_string()];
    row.extend(runs.iter().map(|(_, r)| {
        format!(
            "{} s, {}",
            r.run_ms
                .map_or("-".into(), |ms| format!("{:.2}", ms as f64 / 1e3)),
            r.outcome
        )
    }));
    t.add_row(row);
    let mut row = vec!["how".to_string()];
    row.extend(runs.iter().map(|_| {
        format!(
            "{} seed {} on {}, {} s requested",
            spec.variant,
            crate::seed::show(spec.seed),
            spec.label(),
            secs_arg(spec.duration)
        )
    }));
    t.add_row(row);
    t
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
        assert_eq!(s.hits_per_fork, Some(0.5));
        assert_eq!(
            stress_rates(&result(d15293::SWAP_PREALLOC, Outcome::Infra, 0)),
            None
        );
        assert_eq!(mb_per_s(2_000_000, Duration::from_millis(500)), 4.0);
        assert_eq!(mb_per_s(1, Duration::ZERO), 0.0);
    }

    #[test]
    fn steer_off_and_on_side_by_side() {
        let spec = testkit::stress_spec();
        let off = StressSpec {
            steer: false,
            ..spec.clone()
        };
        let runs = vec![
            (
                off,
                result(stress::scenarios::d15293::SWAP_PREALLOC, Outcome::Clean, 5),
            ),
            (
                spec.clone(),
                result(stress::scenarios::d15293::SWAP_PREALLOC, Outcome::Clean, 40),
            ),
        ];
        let rates: Vec<_> = runs.iter().map(|(_, r)| stress_rates(r)).collect();
        let t = rates_table(&spec, &runs, &rates).to_string();
        assert!(t.contains("steer off") && t.contains("steer on"), "{t}");
        let hits = t
            .lines()
            .find(|l| l.contains("window hits/s"))
            .expect("hits row");
        assert!(hits.contains("5.0") && hits.contains("40.0"), "{hits}");
        let per_fork = t
            .lines()
            .find(|l| l.contains("per fork"))
            .expect("per fork row");
        assert!(
            per_fork.contains("0.500") && per_fork.contains("4.000"),
            "{per_fork}"
        );
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
