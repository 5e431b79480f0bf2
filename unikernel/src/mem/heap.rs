//! The kernel heap: `talc` as the global allocator behind an IRQ-safe lock.
//!
//! It starts with a small static arena (so that records can be encoded from
//! the first instruction on) and is given the bulk of RAM by [`add_region`]
//! once the frame allocator knows the memory map. The region is claimed
//! lazily ([`Lazy`]), by the first allocation that does not fit in the
//! arena: claiming writes talc's metadata at the region's far end, and the
//! first write to a 2 MiB page of guest RAM makes the host zero it (QEMU
//! backs guest RAM with transparent huge pages) — a cost boots that never
//! outgrow the arena, such as the probe, should not pay.

use core::alloc::Layout;
use core::sync::atomic::{AtomicU64, Ordering};

use talc::TalcLock;
use talc::base::Talc;
use talc::base::binning::Binning;
use talc::source::Source;

use crate::arch::sync::IrqRawMutex;

/// Size of the static arena used until RAM is added.
const EARLY_ARENA_SIZE: usize = 64 * 1024;

static mut EARLY_ARENA: [u8; EARLY_ARENA_SIZE] = [0; EARLY_ARENA_SIZE];

/// Where the heap's memory comes from: regions handed over but not yet
/// claimed, claimed one at a time when the heap runs out (the static arena
/// first, then what [`add_region`] gave).
#[derive(Debug)]
pub struct Lazy {
    early: Option<(*mut u8, usize)>,
    pending: Option<(*mut u8, usize)>,
}

// SAFETY: the pointers name memory reserved for the heap (the static arena,
// regions given by `add_region`); the source only lives inside the heap's
// lock, so whichever CPU holds the lock may claim them.
unsafe impl Send for Lazy {}

// SAFETY: `acquire` uses nothing but the `talc` it is given (no allocation,
// no other lock).
unsafe impl Source for Lazy {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, _layout: Layout) -> Result<(), ()> {
        let next = talc
            .source
            .early
            .take()
            .or_else(|| talc.source.pending.take());
        let Some((base, size)) = next else {
            return Err(());
        };
        // SAFETY: `base..base + size` is the static arena or a region whose
        // owner gave it to the heap for good (`add_region`'s contract), and
        // it is claimed once (taken out of the source above). A failed claim
        // returns Ok too: talc then asks again and gets the next region or
        // an error.
        unsafe { talc.claim(base, size) };
        Ok(())
    }
}

#[global_allocator]
static HEAP: TalcLock<IrqRawMutex, Lazy> = TalcLock::new(Lazy {
    early: Some((&raw mut EARLY_ARENA as *mut u8, EARLY_ARENA_SIZE)),
    pending: None,
});

/// Bytes given to the heap by [`add_region`].
static ADDED: AtomicU64 = AtomicU64::new(0);

/// Bytes of RAM given to the heap (besides the small static arena).
pub fn size() -> u64 {
    ADDED.load(Ordering::Relaxed)
}

/// Gives `[start, end)` to the heap (claimed when the heap first runs out:
/// see [`Lazy`]). Only one region is kept: false if one was given already or
/// the range is empty.
///
/// # Safety
/// The range must be identity-mapped RAM that nothing else uses, ever.
pub unsafe fn add_region(start: u64, end: u64) -> bool {
    let mut talc = HEAP.lock();
    if end <= start || ADDED.load(Ordering::Relaxed) != 0 {
        return false;
    }
    talc.source.pending = Some((start as *mut u8, (end - start) as usize));
    ADDED.fetch_add(end - start, Ordering::Relaxed);
    true
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
