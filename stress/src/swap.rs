//! Swap space: which blocks of the swap devices are in use (FreeBSD's
//! `blist`, one per device), allocated in contiguous runs so that a cluster
//! written together can later be read back together (read-behind/ahead).
//!
//! The platform gives one disk; its block range is cut into device slots
//! (`swdevt`, see [`SwapSpace::set_devices`]). Allocation rotates over the
//! devices that are not closing, as `swp_pager_getswapspace` does; a device
//! being removed (`SW_CLOSING`) gets no new blocks and counts the blocks
//! freed on it, so swapoff can check that every block it held was freed
//! exactly once.

use alloc::vec;
use alloc::vec::Vec;

/// One device slot: a range of the disk's blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Dev {
    first: u64,
    end: u64,
    used: u64,
    cursor: u64,
    /// `SW_CLOSING`: swapoff is emptying it.
    closing: bool,
    /// Blocks freed since it started closing.
    freed_closing: u64,
    /// Frees of a block that was not allocated, since it started closing.
    double_frees: u64,
}

struct Bitmap {
    words: Vec<u64>,
    nblocks: u64,
    used: u64,
    devs: Vec<Dev>,
    /// `swdevhd`: the device the next allocation tries first.
    hd: usize,
}

/// What a device's removal saw: blocks freed on it and double frees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DevAudit {
    /// Blocks in use when it started closing.
    pub used_at_close: u64,
    /// Blocks in use now.
    pub used: u64,
    /// Blocks freed since it started closing.
    pub freed: u64,
    /// Frees of blocks that were already free, since it started closing.
    pub double_frees: u64,
}

/// The swap block allocator.
pub struct SwapSpace {
    map: spin::Mutex<Bitmap>,
    used_at_close: spin::Mutex<Vec<u64>>,
}

impl SwapSpace {
    /// `nblocks` free blocks on one device.
    pub fn new(nblocks: u64) -> Self {
        SwapSpace {
            map: spin::Mutex::new(Bitmap {
                words: vec![0; nblocks.div_ceil(64) as usize],
                nblocks,
                used: 0,
                devs: vec![Dev {
                    end: nblocks,
                    ..Dev::default()
                }],
                hd: 0,
            }),
            used_at_close: spin::Mutex::new(vec![0]),
        }
    }

    /// Cuts the disk into `n` device slots of equal size (the last one
    /// takes the remainder). Only while no block is in use; false otherwise.
    pub fn set_devices(&self, n: usize) -> bool {
        let mut m = self.map.lock();
        if m.used != 0 || n == 0 || n as u64 > m.nblocks {
            return false;
        }
        let size = m.nblocks / n as u64;
        let total = m.nblocks;
        m.devs = (0..n as u64)
            .map(|i| Dev {
                first: i * size,
                end: if i + 1 == n as u64 {
                    total
                } else {
                    (i + 1) * size
                },
                ..Dev::default()
            })
            .collect();
        m.hd = 0;
        *self.used_at_close.lock() = vec![0; n];
        true
    }

    /// Number of device slots.
    pub fn devices(&self) -> usize {
        self.map.lock().devs.len()
    }

    /// The device holding `blk`.
    pub fn dev_of(&self, blk: u64) -> Option<usize> {
        self.map.lock().dev_of(blk)
    }

    /// Blocks in use.
    pub fn used(&self) -> u64 {
        self.map.lock().used
    }

    /// Blocks in use on device `dev`.
    pub fn dev_used(&self, dev: usize) -> u64 {
        self.map.lock().devs.get(dev).map_or(0, |d| d.used)
    }

    /// Starts removing `dev` (`SW_CLOSING`): no new blocks go there, and
    /// frees on it are counted from now. False if it is already closing.
    pub fn close(&self, dev: usize) -> bool {
        let mut m = self.map.lock();
        let Some(d) = m.devs.get_mut(dev) else {
            return false;
        };
        if d.closing {
            return false;
        }
        d.closing = true;
        d.freed_closing = 0;
        d.double_frees = 0;
        let used = d.used;
        self.used_at_close.lock()[dev] = used;
        true
    }

    /// What happened on closing device `dev` so far.
    pub fn audit(&self, dev: usize) -> DevAudit {
        let m = self.map.lock();
        let d = m.devs.get(dev).copied().unwrap_or_default();
        DevAudit {
            used_at_close: self.used_at_close.lock().get(dev).copied().unwrap_or(0),
            used: d.used,
            freed: d.freed_closing,
            double_frees: d.double_frees,
        }
    }

    /// Adds `dev` back (`swapon`): it takes new blocks again.
    pub fn reopen(&self, dev: usize) {
        if let Some(d) = self.map.lock().devs.get_mut(dev) {
            d.closing = false;
        }
    }

    /// Allocates `n` contiguous blocks on one device (next fit within the
    /// device, devices in rotation, closing ones skipped); `None` when no
    /// run fits anywhere.
    pub fn alloc_run(&self, n: u64) -> Option<u64> {
        let mut m = self.map.lock();
        if n == 0 {
            return None;
        }
        let ndev = m.devs.len();
        for k in 0..ndev {
            let dev = (m.hd + k) % ndev;
            if m.devs[dev].closing {
                continue;
            }
            if let Some(b) = m.alloc_in(dev, n) {
                m.hd = (dev + 1) % ndev;
                return Some(b);
            }
        }
        None
    }

    /// Frees one block.
    pub fn free(&self, blk: u64) {
        let mut m = self.map.lock();
        let dev = m.dev_of(blk);
        if blk < m.nblocks && m.is_set(blk) {
            m.set(blk, false);
            m.used -= 1;
            if let Some(d) = dev.map(|d| &mut m.devs[d]) {
                d.used -= 1;
                if d.closing {
                    d.freed_closing += 1;
                }
            }
        } else if let Some(d) = dev.map(|d| &mut m.devs[d])
            && d.closing
        {
            d.double_frees += 1;
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
    fn dev_of(&self, blk: u64) -> Option<usize> {
        self.devs.iter().position(|d| d.first <= blk && blk < d.end)
    }

    /// Next fit of `n` blocks within device `dev`.
    fn alloc_in(&mut self, dev: usize, n: u64) -> Option<u64> {
        let Dev {
            first, end, cursor, ..
        } = self.devs[dev];
        let total = end - first;
        if n > total {
            return None;
        }
        let mut start = cursor % total;
        let mut scanned = 0;
        while scanned < total + n {
            if start + n > total {
                scanned += total - start;
                start = 0;
                continue;
            }
            match (start..start + n).find(|&b| self.is_set(first + b)) {
                Some(b) => {
                    scanned += b + 1 - start;
                    start = b + 1;
                }
                None => {
                    for b in start..start + n {
                        self.set(first + b, true);
                    }
                    self.used += n;
                    let d = &mut self.devs[dev];
                    d.used += n;
                    d.cursor = start + n;
                    return Some(first + start);
                }
            }
        }
        None
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

    #[test]
    fn devices_rotate_close_and_audit() {
        let s = SwapSpace::new(100);
        assert!(s.set_devices(2));
        let a = s.alloc_run(4).unwrap();
        let b = s.alloc_run(4).unwrap();
        assert_eq!((s.dev_of(a), s.dev_of(b)), (Some(0), Some(1)), "rotation");
        assert_eq!(s.alloc_run(51), None, "a run stays within one device");
        assert!(s.close(0));
        assert!(!s.close(0), "already closing");
        let c = s.alloc_run(4).unwrap();
        assert_eq!(s.dev_of(c), Some(1), "a closing device takes no blocks");
        for x in a..a + 4 {
            s.free(x);
        }
        s.free(a);
        assert_eq!(
            s.audit(0),
            DevAudit {
                used_at_close: 4,
                used: 0,
                freed: 4,
                double_frees: 1
            }
        );
        s.reopen(0);
        assert_eq!(s.dev_of(s.alloc_run(4).unwrap()), Some(0));
        assert!(!s.set_devices(3), "not while blocks are in use");
        assert_eq!(s.used(), 12);
    }
}
