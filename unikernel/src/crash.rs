//! Deliberate failures (`mode=crash kind=K [cpu=N]`), so that the runner can
//! prove it classifies each one. All of them happen after `Ready` (except
//! `early-exit`, handled before any record in `boot`), on CPU `N` (default 0).
//!
//! The one module outside the fences (`arch`, `drivers`, `mem`) allowed to
//! use `unsafe`, because its unsafe is wrong on purpose: a write to an
//! unmapped address, `ud2`, an empty IDT. It stays out of `arch` so that the
//! fenced code keeps one rule (every unsafe block upholds soundness) and the
//! deliberate breakage sits apart, under its own name.
#![allow(unsafe_code)]

use alloc::vec::Vec;

use stress::proto::{ExitCode, Record, Verdict};
use x86_64::instructions::{hlt, interrupts};

use crate::arch::idt;
use crate::cmdline::CrashKind;
use crate::{console, cpu, diag, panic, qemu, smp, time};

/// A canonical address no page table maps (PML4 slot 128 is empty).
const UNMAPPED: u64 = 0x0000_4000_dead_0000;

/// Fails as `kind` says, on CPU `on_cpu`.
pub fn run(kind: CrashKind, on_cpu: usize) -> ! {
    if on_cpu >= cpu::count() {
        panic::fatal(format_args!(
            "crash cpu={on_cpu}: only {} CPUs are online",
            cpu::count()
        ));
    }
    if on_cpu == 0 {
        crash(kind)
    }
    smp::run_on_all(&|me| {
        if me == on_cpu {
            crash(kind)
        }
    });
    unreachable!("cpu {on_cpu} returned from a crash")
}

fn crash(kind: CrashKind) -> ! {
    match kind {
        CrashKind::Panic => panic!("deliberate panic (mode=crash kind=panic)"),
        CrashKind::PageFault => {
            // SAFETY: deliberately invalid: the write faults (the address is
            // unmapped) and the page-fault handler ends the kernel.
            unsafe { (UNMAPPED as *mut u64).write_volatile(0xdead) };
            unreachable!("write to an unmapped address succeeded")
        }
        CrashKind::StackOverflow => {
            let depth = recurse(0);
            unreachable!("recursion ended at depth {depth}")
        }
        CrashKind::Exception => {
            // SAFETY: `ud2` raises #UD, which the exception handler reports.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
            unreachable!("ud2 returned")
        }
        CrashKind::TripleFault => {
            interrupts::disable();
            // SAFETY: deliberately fatal: with an empty IDT the #UD cannot be
            // delivered (#GP, then #DF, cannot be either) and the CPU resets;
            // QEMU runs with -no-reboot, so it exits. (The contract says
            // int3; a software interrupt with an empty IDT makes this
            // machine's nested KVM stop the VM with an internal error instead
            // of resetting it, while a #UD fault triple-faults everywhere.)
            unsafe {
                idt::load_empty();
                core::arch::asm!("ud2", options(nomem, nostack));
            }
            unreachable!("survived a triple fault")
        }
        CrashKind::Hang => {
            let mut next = time::now_ns();
            loop {
                diag!("still here");
                next += 200_000_000;
                while time::now_ns() < next {
                    hlt();
                }
            }
        }
        CrashKind::HangSilent => {
            interrupts::disable();
            loop {
                core::hint::spin_loop();
            }
        }
        CrashKind::Garbage => {
            console::raw(&random_bytes(2048));
            loop {
                hlt();
            }
        }
        CrashKind::EarlyExit => qemu::exit(ExitCode::Pass),
        CrashKind::Cut => {
            console::record_cut(Record::Done {
                verdict: Verdict::Pass,
                ms: time::now_ns() / 1_000_000,
                stats: None,
            });
            qemu::exit(ExitCode::Pass)
        }
    }
}

/// Recurses until the stack runs into its guard page.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 32]);
    if core::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[(depth % 32) as usize])
}

/// `n` pseudo-random bytes (xorshift64 seeded from the TSC), control
/// characters included.
fn random_bytes(n: usize) -> Vec<u8> {
    let mut x = time::rdtsc() | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
