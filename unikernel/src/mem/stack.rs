//! Kernel stacks: every CPU gets a kernel stack and a double-fault (IST)
//! stack, each with an unmapped 4 KiB guard page right below it, so that an
//! overflow faults instead of silently corrupting memory. The double fault
//! that such an overflow causes runs on the IST stack and reports
//! `stack_guard: true` (see [`guard_hit`]).
//!
//! Layout per CPU, from low to high addresses:
//! `[guard | kernel stack | guard | IST stack]`.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::paging;
use crate::cpu::MAX_CPUS;
use crate::mem::frame::{self, FRAME_SIZE};

/// Size of each CPU's kernel stack.
pub const KERNEL_STACK_SIZE: u64 = 256 * 1024;
/// Size of each CPU's double-fault stack.
pub const IST_STACK_SIZE: u64 = 32 * 1024;
/// Bytes per CPU including both guard pages.
const PER_CPU: u64 = FRAME_SIZE + KERNEL_STACK_SIZE + FRAME_SIZE + IST_STACK_SIZE;

/// Base (lowest guard page) of each CPU's stacks; 0 = none.
static BASES: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Allocates guarded stacks for CPU indices `0..n`. Before the APs start.
pub fn allocate(n: usize) -> Result<(), &'static str> {
    let frames = PER_CPU / FRAME_SIZE * n as u64;
    let region = frame::alloc(frames).ok_or("no memory for the kernel stacks")?;
    for (cpu, base) in BASES.iter().enumerate().take(n) {
        let b = region + cpu as u64 * PER_CPU;
        paging::unmap_page(b).map_err(|_| "cannot unmap a stack guard page")?;
        paging::unmap_page(b + FRAME_SIZE + KERNEL_STACK_SIZE)
            .map_err(|_| "cannot unmap a stack guard page")?;
        base.store(b, Ordering::Relaxed);
    }
    Ok(())
}

/// Top of CPU `cpu`'s kernel stack.
pub fn kernel_top(cpu: usize) -> u64 {
    let base = BASES[cpu].load(Ordering::Relaxed);
    assert!(base != 0, "no stack for cpu {cpu}");
    base + FRAME_SIZE + KERNEL_STACK_SIZE
}

/// Top of CPU `cpu`'s double-fault stack.
pub fn ist_top(cpu: usize) -> u64 {
    kernel_top(cpu) + FRAME_SIZE + IST_STACK_SIZE
}

/// Which stack's guard page holds `addr`, if any: `(cpu, "kernel" | "ist")`.
pub fn guard_hit(addr: u64) -> Option<(usize, &'static str)> {
    BASES.iter().enumerate().find_map(|(cpu, base)| {
        let b = base.load(Ordering::Relaxed);
        if b == 0 {
            None
        } else if (b..b + FRAME_SIZE).contains(&addr) {
            Some((cpu, "kernel"))
        } else {
            let g = b + FRAME_SIZE + KERNEL_STACK_SIZE;
            (g..g + FRAME_SIZE).contains(&addr).then_some((cpu, "ist"))
        }
    })
}
