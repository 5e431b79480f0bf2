//! Multiprocessing: starting the APs and running work on every CPU.
//!
//! Start-up ([`start_aps`], [`wait_for_aps`]): the BSP installs the real-mode
//! trampoline below 1 MiB, sends INIT and then a SIPI to every AP the MADT
//! lists (back to back: QEMU and KVM queue INIT before SIPI, no 10 ms wait is
//! needed), and re-sends the SIPI to APs still missing after 10 ms. Each AP
//! takes a ticket in the trampoline (its CPU index minus one), runs on its own
//! guarded stack, loads its GDT/TSS and the IDT, enables its local APIC, waits
//! (halted) for the BSP's time calibration, starts its tick and checks in. CPU indices
//! are thus assigned in arrival order; APs that arrive after the BSP stopped
//! waiting halt for good and are not counted.
//!
//! Work ([`run_on_all`]): idle APs sleep in `hlt`; the BSP publishes a job,
//! wakes them with an IPI, runs the job itself, and sleeps until the last CPU
//! to finish wakes it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use x86_64::instructions::{hlt, interrupts};
use x86_64::registers::control::Cr3;

use crate::arch::cpu::{self, MAX_CPUS};
use crate::arch::{apic, time};
use crate::arch::{gdt, idt, mtrr, paging, trampoline};
use crate::diag;
use crate::mem::stack;

/// Bit of [`CHECK_IN`] set when the BSP stops waiting for APs.
const CLOSED: u64 = 1 << 63;
/// APs checked in (low bits) and whether check-in is closed.
static CHECK_IN: AtomicU64 = AtomicU64::new(0);

/// Whether the AP with APIC id `id` has arrived (taken a ticket and
/// recorded its id).
fn arrived(id: u32) -> bool {
    (1..MAX_CPUS).any(|i| cpu::apic_id(i) == id)
}

/// Starts every AP in `ap_ids` (APIC ids; at most `MAX_CPUS - 1`). Their
/// guarded stacks (CPU indices 1..=n) must have been allocated.
pub fn start_aps(ap_ids: &[u32]) {
    if ap_ids.is_empty() {
        return;
    }
    let n = ap_ids.len().min(MAX_CPUS - 1);
    let tops: Vec<u64> = (1..=n).map(stack::kernel_top).collect();
    let tops: &'static [u64] = Box::leak(tops.into_boxed_slice());
    // From here on APs may run: page-table removals would need a shootdown.
    paging::freeze();
    let (pml4, _) = Cr3::read();
    // SAFETY: 0x8000 is below 1 MiB, which the frame allocator never hands
    // out, and is identity-mapped; no AP runs yet; the PML4 is in the kernel
    // image (below 4 GiB); `tops` holds `n` guarded stack tops and is leaked;
    // `ap_entry` never returns.
    unsafe {
        trampoline::install(
            pml4.start_address().as_u64(),
            tops.as_ptr(),
            n as u32,
            ap_entry,
        )
    };
    for &id in &ap_ids[..n] {
        apic::send_init(id);
    }
    for &id in &ap_ids[..n] {
        apic::send_sipi(id, trampoline::SIPI_VECTOR);
    }
}

/// Waits until every AP in `ap_ids` checked in or `timeout_ns` passed, then
/// closes check-in. Returns the number of CPUs online (BSP included).
pub fn wait_for_aps(ap_ids: &[u32], timeout_ns: u64) -> usize {
    let n = ap_ids.len().min(MAX_CPUS - 1);
    let start = time::now_ns();
    let mut resent = false;
    loop {
        let checked_in = (CHECK_IN.load(Ordering::Acquire) & !CLOSED) as usize;
        if checked_in == n {
            break;
        }
        let waited = time::now_ns() - start;
        if !resent && waited > 10_000_000 {
            // A second SIPI for APs that did not take a ticket yet.
            resent = true;
            for &id in &ap_ids[..n] {
                if !arrived(id) {
                    apic::send_sipi(id, trampoline::SIPI_VECTOR);
                }
            }
        }
        if waited > timeout_ns {
            break;
        }
        core::hint::spin_loop();
    }
    let checked_in = (CHECK_IN.fetch_or(CLOSED, Ordering::AcqRel) & !CLOSED) as usize;
    if checked_in < n {
        let missing: Vec<u32> = ap_ids[..n]
            .iter()
            .copied()
            .filter(|&id| !arrived(id))
            .collect();
        diag!(
            "cpu bring-up: {} of {} APs checked in within {} ms; never started: APIC ids {:?}",
            checked_in,
            n,
            timeout_ns / 1_000_000,
            missing
        );
    }
    cpu::set_online(1 + checked_in);
    1 + checked_in
}

/// Wakes every AP sleeping in `hlt` (after the calibration, or a new job).
pub fn wake_others() {
    apic::send_ipi_all_others(apic::WAKE_VECTOR);
}

/// Rust entry of every AP, on its own stack, with the trampoline's GDT.
extern "C" fn ap_entry(ticket: u32) -> ! {
    let index = ticket as usize + 1;
    // SAFETY: first thing on this AP; the ticket is unique, so is the index.
    unsafe { cpu::bind_current(index) };
    mtrr::enable_write_back();
    gdt::init_current(stack::ist_top(index));
    idt::load();
    if let Err(e) = apic::init_current() {
        panic!("cpu {index}: cannot enable the local APIC: {e}");
    }
    cpu::set_apic_id(index, apic::current_id());
    // Sleep until the BSP has calibrated the clocks (it then sends a wake
    // IPI): spinning would steal host CPU time from the calibration.
    loop {
        interrupts::disable();
        if time::calibrated() {
            break;
        }
        interrupts::enable_and_hlt();
    }
    let admitted = CHECK_IN
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v & CLOSED == 0).then_some(v + 1)
        })
        .is_ok();
    if !admitted {
        // Too late: the BSP gave up on us. Stay out of the way for good.
        loop {
            interrupts::disable();
            hlt();
        }
    }
    time::start_tick();
    idle_loop()
}

/// The job [`run_on_all`] is running, if any.
static JOB: spin::Mutex<Option<&'static (dyn Fn(usize) + Sync)>> = spin::Mutex::new(None);
/// Bumped for every job.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// CPUs that finished the current job.
static FINISHED: AtomicUsize = AtomicUsize::new(0);
/// True while a `run_on_all` is in progress.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// What an AP does when it has nothing to do: sleep until a job comes.
fn idle_loop() -> ! {
    // Every job so far is ours too: the first job can only start once every
    // admitted AP checked in, which happens before this loop (so do not read
    // the current generation here: it may already include our first job).
    let mut seen = 0;
    loop {
        interrupts::disable();
        let generation = GENERATION.load(Ordering::Acquire);
        if generation == seen {
            // Atomically re-enable interrupts and sleep: a wake IPI sent
            // after the check above still ends the `hlt`.
            interrupts::enable_and_hlt();
            continue;
        }
        interrupts::enable();
        seen = generation;
        let job = (*JOB.lock()).expect("a new generation always has a job");
        job(cpu::id());
        finish_one();
    }
}

/// Counts this CPU as done; the last one wakes the BSP.
fn finish_one() {
    if FINISHED.fetch_add(1, Ordering::AcqRel) + 1 == cpu::count() && cpu::id() != 0 {
        apic::send_ipi(cpu::apic_id(0), apic::WAKE_VECTOR);
    }
}

/// Runs `f(cpu_index)` on every online CPU at once (the caller's included)
/// and returns when all calls have returned. Call it from CPU 0 (the BSP
/// runs the kernel's main flow; the APs wait in their idle loop); it is not
/// re-entrant.
pub fn run_on_all(f: &(dyn Fn(usize) + Sync)) {
    assert_eq!(cpu::id(), 0, "run_on_all must be called from CPU 0");
    assert!(
        !RUNNING.swap(true, Ordering::Acquire),
        "run_on_all is not re-entrant"
    );
    // SAFETY: only the lifetime is extended. The reference is published in
    // JOB for this call only: every CPU finishes calling it before we return
    // (we wait for FINISHED == count) and JOB is cleared before returning, so
    // no CPU uses it after `f`'s real lifetime ends.
    let job: &'static (dyn Fn(usize) + Sync) = unsafe { core::mem::transmute(f) };
    *JOB.lock() = Some(job);
    FINISHED.store(0, Ordering::Relaxed);
    GENERATION.fetch_add(1, Ordering::AcqRel);
    if cpu::count() > 1 {
        wake_others();
    }
    job(0);
    finish_one();
    loop {
        interrupts::disable();
        if FINISHED.load(Ordering::Acquire) >= cpu::count() {
            interrupts::enable();
            break;
        }
        interrupts::enable_and_hlt();
    }
    *JOB.lock() = None;
    RUNNING.store(false, Ordering::Release);
}
