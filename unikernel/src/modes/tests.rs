//! Boot tests (`mode=tests`), reported as KTAP v1 (`stress::ktap`). Each test
//! checks an exact, observable outcome so that it can fail:
//! - `cpus_check_in`: every MADT CPU is online (and `expect_cpus` of them),
//!   and each one runs a job under its own index with its own APIC id;
//! - `lock_counter`: every CPU takes one [`IrqMutex`] 100 000 times and bumps
//!   a plain counter inside it (checking interrupts are off meanwhile); the
//!   total must be exactly `ncpus * 100 000`;
//! - `disk_roundtrip`: all CPUs at once write 8 MiB of 4 KiB pages (disjoint
//!   ranges, a pattern of page, CPU and a per-boot nonce) in requests of 1 to
//!   16 pages, read it all back in other request sizes and compare every byte;
//! - `timer_ticks`: the APIC timer ticks on every CPU, at a plausible rate,
//!   and `now_ns` advances without ever going back.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use stress::ktap;
use x86_64::instructions::{hlt, interrupts};

use crate::cpu::{self, MAX_CPUS};
use crate::disk::{self, PAGE_SIZE};
use crate::mem::{frame, heap};
use crate::sync::IrqMutex;
use crate::{apic, console, diag, smp, time};

/// Outcome of one test.
enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// Runs `tests` (names from `cmdline::TESTS`), prints KTAP; true if none failed.
pub fn run(tests: &[&str], expect_cpus: Option<usize>, madt_cpus: usize) -> bool {
    let cal = time::calibration();
    diag!(
        "time: TSC {} kHz, APIC timer {} kHz (calibrated from the {}), tick {} Hz",
        cal.tsc_hz / 1000,
        cal.apic_timer_hz / 1000,
        cal.source,
        time::TICK_HZ
    );
    diag!(
        "memory: heap {} MiB, {} KiB of free frames; {} unexpected interrupts so far",
        heap::size() >> 20,
        frame::FRAMES.lock().free_bytes() >> 10,
        crate::irq::UNEXPECTED.load(Ordering::Relaxed)
    );
    console::ktap(ktap::HEADER);
    console::ktap(&ktap::plan(tests.len() as u32));
    let mut all_passed = true;
    for (i, &name) in tests.iter().enumerate() {
        let outcome = match name {
            "cpus_check_in" => cpus_check_in(expect_cpus, madt_cpus),
            "lock_counter" => lock_counter(),
            "disk_roundtrip" => disk_roundtrip(),
            "timer_ticks" => timer_ticks(),
            other => Outcome::Fail(format!("no such test {other:?}")),
        };
        let num = i as u32 + 1;
        let line = match &outcome {
            Outcome::Pass => ktap::result(true, num, name, None),
            Outcome::Fail(why) => {
                all_passed = false;
                ktap::result(false, num, name, Some(why))
            }
            Outcome::Skip(why) => ktap::result(true, num, name, Some(&format!("SKIP {why}"))),
        };
        console::ktap(&line);
    }
    all_passed
}

fn cpus_check_in(expect_cpus: Option<usize>, madt_cpus: usize) -> Outcome {
    let online = cpu::count();
    if online != madt_cpus {
        return Outcome::Fail(format!("{online} of {madt_cpus} MADT CPUs checked in"));
    }
    if let Some(n) = expect_cpus
        && n != online
    {
        return Outcome::Fail(format!("{online} CPUs online, expect_cpus={n}"));
    }
    let runs: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
    let wrong_apic = AtomicU64::new(0);
    smp::run_on_all(&|me| {
        runs[me].fetch_add(1, Ordering::Relaxed);
        if apic::current_id() != cpu::apic_id(me) {
            wrong_apic.fetch_add(1, Ordering::Relaxed);
        }
    });
    let counts: Vec<u64> = runs[..online]
        .iter()
        .map(|r| r.load(Ordering::Relaxed))
        .collect();
    if counts.iter().any(|&c| c != 1)
        || runs[online..]
            .iter()
            .any(|r| r.load(Ordering::Relaxed) != 0)
    {
        return Outcome::Fail(format!("job runs per CPU index: {counts:?}"));
    }
    if wrong_apic.load(Ordering::Relaxed) != 0 {
        return Outcome::Fail("a CPU's APIC id differs from the one recorded at check-in".into());
    }
    let mut ids: Vec<u32> = (0..online).map(cpu::apic_id).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() != online {
        return Outcome::Fail("two CPUs share an APIC id".into());
    }
    Outcome::Pass
}

/// Lock round trips per CPU.
const LOCK_ROUNDS: u64 = 100_000;

fn lock_counter() -> Outcome {
    let counter: IrqMutex<u64> = IrqMutex::new(0);
    let irqs_on_inside = AtomicU64::new(0);
    let start = time::now_ns();
    smp::run_on_all(&|_| {
        for _ in 0..LOCK_ROUNDS {
            let mut value = counter.lock();
            if interrupts::are_enabled() {
                irqs_on_inside.fetch_add(1, Ordering::Relaxed);
            }
            *value += 1;
        }
    });
    let elapsed_ms = (time::now_ns() - start) / 1_000_000;
    let expected = cpu::count() as u64 * LOCK_ROUNDS;
    let got = *counter.lock();
    diag!(
        "lock_counter: {got} increments by {} CPUs in {elapsed_ms} ms",
        cpu::count()
    );
    if got != expected {
        return Outcome::Fail(format!("counter {got} != {expected}"));
    }
    let on = irqs_on_inside.load(Ordering::Relaxed);
    if on != 0 {
        return Outcome::Fail(format!(
            "interrupts were enabled inside the lock {on} times"
        ));
    }
    Outcome::Pass
}

/// Pages written and read back in `disk_roundtrip` (8 MiB).
const ROUNDTRIP_PAGES: u64 = 2048;
/// Largest request, in pages.
const MAX_CHUNK: u64 = 16;

/// The expected 8 bytes at `word` of disk page `page` written by `cpu`.
fn pattern(nonce: u64, page: u64, cpu: usize, word: usize) -> u64 {
    let mut x =
        nonce ^ page.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((cpu as u64 + 1) << 56) ^ word as u64;
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn fill(buf: &mut [u8], nonce: u64, first_page: u64, cpu: usize) {
    for (p, page) in buf.chunks_mut(PAGE_SIZE).enumerate() {
        for (w, word) in page.chunks_mut(8).enumerate() {
            word.copy_from_slice(&pattern(nonce, first_page + p as u64, cpu, w).to_le_bytes());
        }
    }
}

/// First difference from the pattern: (page, byte offset, expected, found).
fn check(buf: &[u8], nonce: u64, first_page: u64, cpu: usize) -> Option<(u64, usize, u64, u64)> {
    for (p, page) in buf.chunks(PAGE_SIZE).enumerate() {
        for (w, word) in page.chunks(8).enumerate() {
            let expected = pattern(nonce, first_page + p as u64, cpu, w);
            let found = u64::from_le_bytes(word.try_into().expect("8-byte chunk"));
            if found != expected {
                return Some((first_page + p as u64, w * 8, expected, found));
            }
        }
    }
    None
}

fn disk_roundtrip() -> Outcome {
    let Some(disk) = disk::get() else {
        return Outcome::Skip("no virtio-blk disk".into());
    };
    let ncpus = cpu::count() as u64;
    let total = ROUNDTRIP_PAGES.min(disk.capacity_pages());
    let per_cpu = total / ncpus;
    if per_cpu == 0 {
        return Outcome::Fail(format!("disk too small: {} pages", disk.capacity_pages()));
    }
    let nonce = time::rdtsc();
    let errors: IrqMutex<Vec<String>> = IrqMutex::new(Vec::new());
    let start = time::now_ns();
    smp::run_on_all(&|me| {
        let first = me as u64 * per_cpu;
        let mut buf = vec![0u8; (MAX_CHUNK as usize) * PAGE_SIZE];
        let fail = |msg: String| errors.lock().push(format!("cpu {me}: {msg}"));
        // Write in requests of 1, 2, ..., 16, 1, 2, ... pages.
        let (mut page, mut size) = (first, 1);
        while page < first + per_cpu {
            let n = size.min(first + per_cpu - page);
            let chunk = &mut buf[..n as usize * PAGE_SIZE];
            fill(chunk, nonce, page, me);
            if let Err(e) = disk.write_pages(page, chunk) {
                return fail(format!("write of pages {page}..{}: {e}", page + n));
            }
            page += n;
            size = size % MAX_CHUNK + 1;
        }
        // Read back in requests of 16, 15, ..., 1, 16, ... pages.
        let (mut page, mut size) = (first, MAX_CHUNK);
        while page < first + per_cpu {
            let n = size.min(first + per_cpu - page);
            let chunk = &mut buf[..n as usize * PAGE_SIZE];
            chunk.fill(0);
            if let Err(e) = disk.read_pages(page, chunk) {
                return fail(format!("read of pages {page}..{}: {e}", page + n));
            }
            if let Some((p, offset, expected, found)) = check(chunk, nonce, page, me) {
                return fail(format!(
                    "page {p} byte {offset}: expected {expected:#018x}, read {found:#018x}"
                ));
            }
            page += n;
            size = if size == 1 { MAX_CHUNK } else { size - 1 };
        }
    });
    let elapsed_ms = (time::now_ns() - start) / 1_000_000;
    diag!(
        "disk_roundtrip: {} pages by {ncpus} CPUs in {elapsed_ms} ms ({}, up to {} requests in flight)",
        per_cpu * ncpus,
        disk.transport(),
        disk.max_in_flight()
    );
    let errors = errors.lock();
    match errors.first() {
        None => Outcome::Pass,
        Some(first) => Outcome::Fail(format!("{} CPU(s) failed; {first}", errors.len())),
    }
}

/// Ticks each CPU must see.
const TICKS_WANTED: u64 = 3;

/// Tick-hook calls per CPU during `timer_ticks`.
static HOOK_CALLS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn count_hook_call(cpu: usize) {
    HOOK_CALLS[cpu].fetch_add(1, Ordering::Relaxed);
}

fn timer_ticks() -> Outcome {
    let tick_ns = 1_000_000_000 / time::TICK_HZ;
    time::set_tick_hook(Some(count_hook_call));
    let results: IrqMutex<Vec<(usize, u64, u64, bool)>> = IrqMutex::new(Vec::new());
    smp::run_on_all(&|me| {
        let (t0, n0) = (time::ticks(me), time::now_ns());
        let mut last = n0;
        let mut monotonic = true;
        while time::ticks(me) < t0 + TICKS_WANTED && last - n0 < 1_000_000_000 {
            if interrupts::are_enabled() {
                hlt();
            }
            let now = time::now_ns();
            monotonic &= now >= last;
            last = now;
        }
        results
            .lock()
            .push((me, time::ticks(me) - t0, last - n0, monotonic));
    });
    time::set_tick_hook(None);
    let results = results.lock();
    if results.len() != cpu::count() {
        return Outcome::Fail(format!(
            "{} of {} CPUs reported",
            results.len(),
            cpu::count()
        ));
    }
    for &(me, ticks, elapsed, monotonic) in results.iter() {
        if HOOK_CALLS[me].load(Ordering::Relaxed) == 0 {
            return Outcome::Fail(format!("cpu {me}: the tick hook never ran"));
        }
        if ticks < TICKS_WANTED {
            return Outcome::Fail(format!(
                "cpu {me}: {ticks} timer ticks in {} ms",
                elapsed / 1_000_000
            ));
        }
        if !monotonic {
            return Outcome::Fail(format!("cpu {me}: now_ns went backwards"));
        }
        // From any phase, TICKS_WANTED ticks take more than TICKS_WANTED-1
        // periods: far less means the timer or the clock is miscalibrated.
        if elapsed < (TICKS_WANTED - 1) * tick_ns / 2 {
            return Outcome::Fail(format!(
                "cpu {me}: {ticks} ticks in {elapsed} ns, expected about {} ns",
                TICKS_WANTED * tick_ns
            ));
        }
    }
    Outcome::Pass
}
