//! The kernel heap: `talc` as the global allocator behind an IRQ-safe lock.
//!
//! It starts with a small static arena (so that records can be encoded from
//! the first instruction on) and is given the bulk of RAM by [`add_region`]
//! once the frame allocator knows the memory map. talc only writes its
//! metadata at the ends of a region, so adding 250 MiB costs nothing.

use core::sync::atomic::{AtomicU64, Ordering};

use talc::TalcLock;
use talc::source::Claim;

use crate::arch::sync::IrqRawMutex;

/// Size of the static arena used until RAM is added.
const EARLY_ARENA_SIZE: usize = 64 * 1024;

static mut EARLY_ARENA: [u8; EARLY_ARENA_SIZE] = [0; EARLY_ARENA_SIZE];

#[global_allocator]
static HEAP: TalcLock<IrqRawMutex, Claim> =
    // SAFETY: `EARLY_ARENA` is used by nothing but this allocator.
    TalcLock::new(unsafe { Claim::array(&raw mut EARLY_ARENA) });

/// Bytes given to the heap by [`add_region`].
static ADDED: AtomicU64 = AtomicU64::new(0);

/// Bytes of RAM given to the heap (besides the small static arena).
pub fn size() -> u64 {
    ADDED.load(Ordering::Relaxed)
}

/// Gives `[start, end)` to the heap.
///
/// # Safety
/// The range must be identity-mapped RAM that nothing else uses, ever.
pub unsafe fn add_region(start: u64, end: u64) -> bool {
    let mut talc = HEAP.lock();
    // SAFETY: see the function contract.
    let claimed = unsafe { talc.claim(start as *mut u8, (end - start) as usize) }.is_some();
    if claimed {
        ADDED.fetch_add(end - start, Ordering::Relaxed);
    }
    claimed
}

/// True if the heap lock can be taken (within a bounded wait): the panic
/// path checks this so that a fault inside the allocator does not deadlock.
pub fn usable() -> bool {
    for _ in 0..10_000_000u64 {
        if HEAP.try_lock().is_some() {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}
