//! Where each CPU's time goes during a run: cheap per-CPU nanosecond
//! buckets (injected delays, steering's wait, fork, the child's checks,
//! fresh parents, swap I/O, and the model's wait loops by what they wait
//! on). Each is timed with two clock reads around the slow part only (a
//! contended lock's wait loop, never an uncontended acquire), so the hot
//! paths do not pay. The kernel prints them per CPU at the end of a run.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::vm::Wait;

/// One bucket of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Bucket {
    /// Injected delays at named sites (`VmConfig::delays`).
    Delay,
    /// Steering: the fork loop waiting for an armed window.
    Steer,
    /// `vmspace_fork` from start to done (split's busy sleeps included).
    Fork,
    /// A child's loads, stores and exit.
    Child,
    /// Building fresh parent images (write, page out, swap in, trim).
    NewParent,
    /// Swap reads (virtio-blk under the kernel).
    SwapRead,
    /// Swap writes.
    SwapWrite,
    /// Waiting for an object, map, pmap or internal lock.
    Lock,
    /// Waiting for a busy page.
    Busy,
    /// Waiting for a pbuf.
    Pbuf,
    /// Waiting for paging-in-progress or free pages.
    Other,
    /// The page daemon idle (nothing to reclaim).
    Idle,
}

/// Number of buckets.
pub const NBUCKETS: usize = 12;

impl Bucket {
    /// Every bucket, in order.
    pub const ALL: [Bucket; NBUCKETS] = [
        Bucket::Delay,
        Bucket::Steer,
        Bucket::Fork,
        Bucket::Child,
        Bucket::NewParent,
        Bucket::SwapRead,
        Bucket::SwapWrite,
        Bucket::Lock,
        Bucket::Busy,
        Bucket::Pbuf,
        Bucket::Other,
        Bucket::Idle,
    ];

    /// Short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Bucket::Delay => "delay",
            Bucket::Steer => "steer",
            Bucket::Fork => "fork",
            Bucket::Child => "child",
            Bucket::NewParent => "new-parent",
            Bucket::SwapRead => "swap-read",
            Bucket::SwapWrite => "swap-write",
            Bucket::Lock => "lock",
            Bucket::Busy => "busy",
            Bucket::Pbuf => "pbuf",
            Bucket::Other => "pip/free",
            Bucket::Idle => "idle",
        }
    }

    /// The bucket of a wait loop waiting as `w`.
    pub fn of_wait(w: Wait) -> Bucket {
        match w {
            Wait::Busy { .. } => Bucket::Busy,
            Wait::Pbuf => Bucket::Pbuf,
            Wait::Pip(_) | Wait::FreePages | Wait::Script(_) | Wait::Running => Bucket::Other,
            Wait::ObjectLock(_)
            | Wait::MapRead(_)
            | Wait::MapWrite(_)
            | Wait::Pmap(_)
            | Wait::Internal => Bucket::Lock,
        }
    }
}

/// Per-CPU time buckets, in nanoseconds.
pub struct Timers {
    cpus: alloc::vec::Vec<[AtomicU64; NBUCKETS]>,
}

impl Timers {
    /// All zero, for `ncpus` CPUs.
    pub fn new(ncpus: usize) -> Self {
        Timers {
            cpus: (0..ncpus.max(1))
                .map(|_| core::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Adds `ns` to `cpu`'s bucket `b` (out-of-range CPUs use block 0).
    #[inline]
    pub fn add(&self, cpu: usize, b: Bucket, ns: u64) {
        let block = self.cpus.get(cpu).unwrap_or(&self.cpus[0]);
        block[b as usize].fetch_add(ns, Ordering::Relaxed);
    }

    /// One CPU's buckets, in [`Bucket::ALL`] order.
    pub fn of_cpu(&self, cpu: usize) -> [u64; NBUCKETS] {
        let block = self.cpus.get(cpu).unwrap_or(&self.cpus[0]);
        core::array::from_fn(|i| block[i].load(Ordering::Relaxed))
    }

    /// CPUs counted.
    pub fn ncpus(&self) -> usize {
        self.cpus.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_add_per_cpu() {
        let t = Timers::new(2);
        t.add(1, Bucket::Busy, 5);
        t.add(1, Bucket::Busy, 7);
        t.add(9, Bucket::Delay, 3); // falls back to CPU 0
        assert_eq!(t.of_cpu(1)[Bucket::Busy as usize], 12);
        assert_eq!(t.of_cpu(0)[Bucket::Delay as usize], 3);
        assert_eq!(Bucket::of_wait(Wait::Pbuf), Bucket::Pbuf);
        assert_eq!(Bucket::of_wait(Wait::ObjectLock(3)), Bucket::Lock);
    }
}
