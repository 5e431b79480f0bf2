//! The physical frame allocator: a short list of free extents of 4 KiB frames,
//! seeded from the PVH memory map. It hands out physically contiguous runs
//! (stacks, page tables, virtio DMA) and gives the bulk of RAM to the heap
//! ([`FrameAllocator::take_largest`]). Memory is identity-mapped, so a frame's
//! physical address is also its address.
//!
//! [`FrameAllocator`] is plain logic (tested on the host); the kernel's single
//! instance sits behind an IRQ-safe lock.

/// Size of a frame.
pub const FRAME_SIZE: u64 = 4096;
/// Most free extents tracked; a free that would need more is leaked.
const MAX_EXTENTS: usize = 64;

/// A free extent `[start, end)`, frame-aligned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    pub start: u64,
    pub end: u64,
}

impl Extent {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
}

/// First-fit allocator over sorted, disjoint, coalesced free extents.
#[derive(Debug)]
pub struct FrameAllocator {
    extents: [Extent; MAX_EXTENTS],
    len: usize,
    /// Bytes lost because the extent list was full on a free.
    pub leaked: u64,
}

impl Default for FrameAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameAllocator {
    pub const fn new() -> Self {
        FrameAllocator {
            extents: [Extent { start: 0, end: 0 }; MAX_EXTENTS],
            len: 0,
            leaked: 0,
        }
    }

    /// The free extents, sorted by address.
    pub fn extents(&self) -> &[Extent] {
        &self.extents[..self.len]
    }

    /// Total free bytes.
    pub fn free_bytes(&self) -> u64 {
        self.extents().iter().map(Extent::len).sum()
    }

    /// Adds `[start, end)` (shrunk to whole frames) to the free memory.
    /// Overlaps with memory that is already free are ignored.
    pub fn add(&mut self, start: u64, end: u64) {
        let start = start.div_ceil(FRAME_SIZE) * FRAME_SIZE;
        let end = end / FRAME_SIZE * FRAME_SIZE;
        if start >= end {
            return;
        }
        // Cut away the parts that are already free, insert the rest.
        let mut cursor = start;
        while cursor < end {
            match self.extents().iter().find(|x| x.end > cursor).copied() {
                Some(x) if x.start <= cursor => cursor = x.end,
                Some(x) => {
                    let piece_end = end.min(x.start);
                    self.insert(cursor, piece_end);
                    cursor = piece_end;
                }
                None => {
                    self.insert(cursor, end);
                    cursor = end;
                }
            }
        }
    }

    /// Removes `[start, end)` from the free memory (reserves it).
    pub fn remove(&mut self, start: u64, end: u64) {
        let start = start / FRAME_SIZE * FRAME_SIZE;
        let end = end.div_ceil(FRAME_SIZE) * FRAME_SIZE;
        let mut i = 0;
        while i < self.len {
            let x = self.extents[i];
            if x.end <= start || x.start >= end {
                i += 1;
                continue;
            }
            // Overlap: keep the parts below `start` and above `end`.
            self.delete(i);
            if x.start < start {
                self.insert(x.start, start);
                i += 1;
            }
            if x.end > end {
                self.insert(end, x.end);
                i += 1;
            }
        }
    }

    /// Allocates `frames` contiguous frames aligned to `align` bytes (a power
    /// of two, at least a frame). Returns the start address.
    pub fn alloc(&mut self, frames: u64, align: u64) -> Option<u64> {
        let size = frames.checked_mul(FRAME_SIZE)?;
        let align = align.max(FRAME_SIZE);
        debug_assert!(align.is_power_of_two());
        let found = self.extents().iter().find_map(|x| {
            let start = x.start.checked_next_multiple_of(align)?;
            (start.checked_add(size)? <= x.end).then_some(start)
        })?;
        self.remove(found, found + size);
        Some(found)
    }

    /// Returns `frames` frames at `start` to the free memory.
    pub fn free(&mut self, start: u64, frames: u64) {
        self.add(start, start + frames * FRAME_SIZE);
    }

    /// Takes the largest extent, leaving `keep` bytes of free memory outside
    /// it if it can (the part given away is the bottom of the extent: at
    /// boot that is right after the kernel image, memory the host already
    /// backs, so the heap's first allocations do not fault in fresh pages).
    pub fn take_largest(&mut self, keep: u64) -> Option<Extent> {
        let (i, largest) = self
            .extents()
            .iter()
            .copied()
            .enumerate()
            .max_by_key(|(_, x)| x.len())?;
        let others = self.free_bytes() - largest.len();
        let keep_here = keep.saturating_sub(others).div_ceil(FRAME_SIZE) * FRAME_SIZE;
        if keep_here >= largest.len() {
            return None;
        }
        let taken = Extent {
            start: largest.start,
            end: largest.end - keep_here,
        };
        self.delete(i);
        if keep_here > 0 {
            self.insert(taken.end, largest.end);
        }
        Some(taken)
    }

    /// Inserts a free extent, coalescing with neighbours. `[start, end)` must
    /// not overlap free memory.
    fn insert(&mut self, start: u64, end: u64) {
        let i = self.extents().partition_point(|x| x.start < start);
        let merge_prev = i > 0 && self.extents[i - 1].end == start;
        let merge_next = i < self.len && self.extents[i].start == end;
        match (merge_prev, merge_next) {
            (true, true) => {
                self.extents[i - 1].end = self.extents[i].end;
                self.delete(i);
            }
            (true, false) => self.extents[i - 1].end = end,
            (false, true) => self.extents[i].start = start,
            (false, false) => {
                if self.len == MAX_EXTENTS {
                    self.leaked += end - start;
                    return;
                }
                self.extents.copy_within(i..self.len, i + 1);
                self.extents[i] = Extent { start, end };
                self.len += 1;
            }
        }
    }

    fn delete(&mut self, i: usize) {
        self.extents.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }
}

#[cfg(target_os = "none")]
mod global {
    use super::{FRAME_SIZE, FrameAllocator};
    use crate::arch::sync::IrqMutex;

    /// The kernel's frame allocator.
    pub static FRAMES: IrqMutex<FrameAllocator> = IrqMutex::new(FrameAllocator::new());

    /// Allocates `frames` contiguous frames (not zeroed); returns the address.
    pub fn alloc(frames: u64) -> Option<u64> {
        FRAMES.lock().alloc(frames, FRAME_SIZE)
    }

    /// Allocates `frames` contiguous zeroed frames; returns the address.
    pub fn alloc_zeroed(frames: u64) -> Option<u64> {
        let addr = alloc(frames)?;
        // SAFETY: the frames were just allocated, so nothing else uses them,
        // and all RAM handed to the allocator is identity-mapped.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, (frames * FRAME_SIZE) as usize) };
        Some(addr)
    }

    /// Frees frames from [`alloc()`]/[`alloc_zeroed`].
    ///
    /// # Safety
    /// The frames must come from this allocator and no longer be used.
    pub unsafe fn free(addr: u64, frames: u64) {
        FRAMES.lock().free(addr, frames);
    }
}

#[cfg(target_os = "none")]
pub use global::*;

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1 << 20;

    #[test]
    fn add_remove_alloc_free() {
        let mut a = FrameAllocator::new();
        a.add(M, 16 * M);
        a.add(32 * M + 100, 40 * M);
        assert_eq!(a.extents().len(), 2);
        assert_eq!(a.extents()[1].start, 32 * M + FRAME_SIZE);
        a.remove(2 * M, 3 * M);
        assert_eq!(
            a.extents(),
            &[
                Extent {
                    start: M,
                    end: 2 * M
                },
                Extent {
                    start: 3 * M,
                    end: 16 * M
                },
                Extent {
                    start: 32 * M + FRAME_SIZE,
                    end: 40 * M
                },
            ]
        );
        let x = a.alloc(1, 2 * M).unwrap();
        assert_eq!(x, 4 * M);
        a.free(x, 1);
        assert_eq!(
            a.extents()[1],
            Extent {
                start: 3 * M,
                end: 16 * M
            }
        );
        let total = a.free_bytes();
        let y = a.alloc(256, FRAME_SIZE).unwrap();
        assert_eq!(y, M);
        assert_eq!(a.free_bytes(), total - M);
        a.free(y, 256);
        assert_eq!(a.free_bytes(), total);
        assert!(a.alloc(1 << 20, FRAME_SIZE).is_none());
    }

    #[test]
    fn add_ignores_overlap() {
        let mut a = FrameAllocator::new();
        a.add(M, 2 * M);
        a.add(M / 2, 3 * M);
        assert_eq!(
            a.extents(),
            &[Extent {
                start: M / 2,
                end: 3 * M
            }]
        );
    }

    #[test]
    fn take_largest_keeps_reserve() {
        let mut a = FrameAllocator::new();
        a.add(M, 2 * M);
        a.add(4 * M, 100 * M);
        let heap = a.take_largest(3 * M).unwrap();
        assert_eq!(
            heap,
            Extent {
                start: 4 * M,
                end: 98 * M
            }
        );
        assert_eq!(a.free_bytes(), 3 * M);
        assert_eq!(
            a.extents(),
            [
                Extent {
                    start: M,
                    end: 2 * M
                },
                Extent {
                    start: 98 * M,
                    end: 100 * M
                }
            ]
        );
        assert!(a.alloc(512, FRAME_SIZE).is_some());
    }

    #[test]
    fn leaks_when_full() {
        let mut a = FrameAllocator::new();
        for i in 0..(MAX_EXTENTS as u64 + 2) {
            a.add(i * 2 * M, i * 2 * M + M);
        }
        assert_eq!(a.extents().len(), MAX_EXTENTS);
        assert_eq!(a.leaked, 2 * M);
    }
}
