//! Kernel stacks: every CPU gets a kernel stack and a double-fault (IST)
//! stack, each with an unmapped 4 KiB guard page right below it, so that an
//! overflow faults instead of silently corrupting memory. The double fault
//! that such an overflow causes runs on the IST stack and reports
//! `stack_guard: true` (see [`guard_hit`]).
//!
//! Layout per CPU, from low to high addresses:
//! `[guard | kernel stack | guard | IST stack]`.

use crate::arch::cpu::MAX_CPUS;
use crate::arch::paging;
use crate::mem::frame::{self, FRAME_SIZE};

/// Size of each CPU's kernel stack.
pub const KERNEL_STACK_SIZE: u64 = 256 * 1024;
/// Size of each CPU's double-fault stack.
pub const IST_STACK_SIZE: u64 = 32 * 1024;
/// Bytes per CPU including both guard pages.
const PER_CPU: u64 = FRAME_SIZE + KERNEL_STACK_SIZE + FRAME_SIZE + IST_STACK_SIZE;

/// The stacks of every CPU, one after the other: where they start and for
/// how many CPUs (set once, before the APs start).
static REGION: spin::Once<(u64, usize)> = spin::Once::new();

/// Base (lowest guard page) of the stacks of CPU `cpu`.
fn base(region: u64, cpu: usize) -> u64 {
    region + cpu as u64 * PER_CPU
}

/// The guard page below the IST stack of the CPU whose stacks start at `base`.
fn ist_guard(base: u64) -> u64 {
    base + FRAME_SIZE + KERNEL_STACK_SIZE
}

/// Allocates guarded stacks for CPU indices `0..n`. Before the APs start.
pub fn allocate(n: usize) -> Result<(), &'static str> {
    let frames = PER_CPU / FRAME_SIZE * n as u64;
    let region = frame::alloc(frames).ok_or("no memory for the kernel stacks")?;
    let n = n.min(MAX_CPUS);
    for cpu in 0..n {
        let b = base(region, cpu);
        paging::unmap_page(b).map_err(|_| "cannot unmap a stack guard page")?;
        paging::unmap_page(ist_guard(b)).map_err(|_| "cannot unmap a stack guard page")?;
    }
    REGION.call_once(|| (region, n));
    Ok(())
}

/// Top of CPU `cpu`'s kernel stack.
pub fn kernel_top(cpu: usize) -> u64 {
    match REGION.get() {
        Some(&(region, n)) if cpu < n => ist_guard(base(region, cpu)),
        _ => panic!("no stack for cpu {cpu}"),
    }
}

/// Top of CPU `cpu`'s double-fault stack.
pub fn ist_top(cpu: usize) -> u64 {
    kernel_top(cpu) + FRAME_SIZE + IST_STACK_SIZE
}

/// Which stack's guard page holds `addr`, if any: `(cpu, "kernel" | "ist")`.
pub fn guard_hit(addr: u64) -> Option<(usize, &'static str)> {
    let &(region, n) = REGION.get()?;
    (0..n).find_map(|cpu| {
        let b = base(region, cpu);
        let g = ist_guard(b);
        if (b..b + FRAME_SIZE).contains(&addr) {
            Some((cpu, "kernel"))
        } else {
            (g..g + FRAME_SIZE).contains(&addr).then_some((cpu, "ist"))
        }
    })
}
