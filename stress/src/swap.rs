//! Swap space: which blocks of the swap device are in use (FreeBSD's
//! `blist`), allocated in contiguous runs so that a cluster written together
//! can later be read back together (read-behind/ahead).

use alloc::vec;
use alloc::vec::Vec;

struct Bitmap {
    words: Vec<u64>,
    nblocks: u64,
    used: u64,
    cursor: u64,
}

/// The swap block allocator.
pub struct SwapSpace {
    map: spin::Mutex<Bitmap>,
}

impl SwapSpace {
    /// `nblocks` free blocks.
    pub fn new(nblocks: u64) -> Self {
        SwapSpace {
            map: spin::Mutex::new(Bitmap {
                words: vec![0; nblocks.div_ceil(64) as usize],
                nblocks,
                used: 0,
                cursor: 0,
            }),
        }
    }

    /// Blocks in use.
    pub fn used(&self) -> u64 {
        self.map.lock().used
    }

    /// Allocates `n` contiguous blocks (next fit); `None` when no run fits.
    pub fn alloc_run(&self, n: u64) -> Option<u64> {
        let mut m = self.map.lock();
        if n == 0 || n > m.nblocks {
            return None;
        }
        let total = m.nblocks;
        let mut start = m.cursor % total;
        let mut scanned = 0;
        while scanned < total + n {
            if start + n > total {
                scanned += total - start;
                start = 0;
                continue;
            }
            match (start..start + n).find(|&b| m.is_set(b)) {
                Some(b) => {
                    scanned += b + 1 - start;
                    start = b + 1;
                }
                None => {
                    for b in start..start + n {
                        m.set(b, true);
                    }
                    m.used += n;
                    m.cursor = start + n;
                    return Some(start);
                }
            }
        }
        None
    }

    /// Frees one block.
    pub fn free(&self, blk: u64) {
        let mut m = self.map.lock();
        if blk < m.nblocks && m.is_set(blk) {
            m.set(blk, false);
            m.used -= 1;
        }
    }

    /// Is the block allocated?
    pub fn allocated(&self, blk: u64) -> bool {
        let m = self.map.lock();
        blk < m.nblocks && m.is_set(blk)
    }
}

impl Bitmap {
    fn is_set(&self, b: u64) -> bool {
        self.words[(b / 64) as usize] & (1 << (b % 64)) != 0
    }
    fn set(&mut self, b: u64, on: bool) {
        let w = &mut self.words[(b / 64) as usize];
        if on {
            *w |= 1 << (b % 64);
        } else {
            *w &= !(1 << (b % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_contiguous_and_conserved() {
        let s = SwapSpace::new(100);
        let a = s.alloc_run(16).unwrap();
        let b = s.alloc_run(16).unwrap();
        assert_eq!(b, a + 16);
        assert_eq!(s.used(), 32);
        for x in a..a + 16 {
            s.free(x);
        }
        s.free(a); // double free is ignored
        assert_eq!(s.used(), 16);
        // Fill the rest; a run longer than any free gap fails.
        let c = s.alloc_run(68).unwrap();
        assert_eq!(c, 32);
        assert_eq!(s.alloc_run(17), None);
        assert_eq!(s.alloc_run(16), Some(0));
        assert_eq!(s.used(), 100);
        assert_eq!(s.alloc_run(1), None);
    }
}
