//! `mode=diskbench`: how fast virtio-blk reads here. Writes `mib` MiB of
//! numbered pages, then reads them back sequentially in 128 KiB requests,
//! checks every page's number, and reports the bytes and nanoseconds read.

use alloc::vec;

use stress::proto::{Record, Verdict};

use crate::{console, disk, panic, time};

/// Pages per request (128 KiB).
const CHUNK: usize = 32;

fn stamp(page: u64) -> u64 {
    page ^ 0x00d1_5293_f0e5_5a11
}

/// Runs the benchmark and exits.
pub fn run(mib: u64) -> ! {
    let Some(d) = disk::get() else {
        panic::fatal(format_args!(
            "mode=diskbench needs the virtio-blk disk, and none was found"
        ))
    };
    let pages = (mib * 256).min(d.capacity_pages()) / CHUNK as u64 * CHUNK as u64;
    if pages == 0 {
        panic::fatal(format_args!(
            "mode=diskbench: the disk is smaller than one request"
        ));
    }
    let mut buf = vec![0u8; CHUNK * disk::PAGE_SIZE];
    for first in (0..pages).step_by(CHUNK) {
        for (i, page) in buf.chunks_mut(disk::PAGE_SIZE).enumerate() {
            page[..8].copy_from_slice(&stamp(first + i as u64).to_le_bytes());
        }
        if let Err(e) = d.write_pages(first, &buf) {
            panic::fatal(format_args!("diskbench: write at page {first}: {e}"));
        }
    }
    let t0 = time::now_ns();
    for first in (0..pages).step_by(CHUNK) {
        if let Err(e) = d.read_pages(first, &mut buf) {
            panic::fatal(format_args!("diskbench: read at page {first}: {e}"));
        }
        for (i, page) in buf.chunks(disk::PAGE_SIZE).enumerate() {
            let want = stamp(first + i as u64).to_le_bytes();
            if page[..8] != want {
                panic::fatal(format_args!(
                    "diskbench: page {} read back wrong",
                    first + i as u64
                ));
            }
        }
    }
    let ns = time::now_ns() - t0;
    let measure = |name: &str, value: u64, unit: &str| {
        console::record(Record::Measure {
            name: name.into(),
            value,
            unit: unit.into(),
        })
    };
    measure("virtio_read_bytes", pages * disk::PAGE_SIZE as u64, "bytes");
    measure("virtio_read_ns", ns, "ns");
    super::done(Verdict::Pass)
}
