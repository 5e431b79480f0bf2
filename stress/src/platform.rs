//! What the model needs from the machine it runs on, and nothing more.
//!
//! The unikernel implements this with spinning CPUs, the TSC and virtio-blk;
//! the host tests implement it with std threads and an in-memory disk, or under
//! a controlled scheduler. The model never asks which.

use core::fmt;
use serde::{Deserialize, Serialize};

/// Bytes per page and per swap block.
pub const PAGE_SIZE: usize = 4096;

/// The swap device failed an I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError {
    /// First block of the failed request.
    pub blk: u64,
    /// Pages in the request.
    pub pages: u32,
}

/// Named places in the model where delays can be injected, scripted tests can
/// stop a thread, and controlled schedulers can switch threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Site {
    /// getpages dropped the object lock and is about to take a pbuf (baseline order).
    GetpagesPbuf,
    /// getpages holds its pbuf and is about to issue the read.
    GetpagesIo,
    /// getpages finished its I/O (pages valid, behind/ahead unbusied).
    GetpagesDone,
    /// vm_fault is about to try the map lock again after the pager (object
    /// unlocked, page busy).
    FaultRelock,
    /// split met a busy page and is about to sleep on it.
    SplitBusySleep,
    /// split is about to wait for paging-in-progress (split-pipwait).
    SplitPipWait,
    /// split is about to restart its page loop after sleeping.
    SplitRestart,
    /// vmspace_fork holds the parent's map exclusively.
    ForkLocked,
    /// vmspace_fork is done and unlocked the parent's map.
    ForkDone,
    /// pageout is about to write a cluster to swap.
    PageoutIo,
    /// swapoff dropped the object lock (to sleep on a busy page, wait for
    /// memory, or read) and is about to take it again.
    SwapoffUnlocked,
    /// swapoff holds its busy pages and is about to read their blocks.
    SwapoffIo,
    /// vm_fault woke from a busy page below the top object, dropped its
    /// paging reference there, and is about to retry (collapse scenario).
    FaultBusyRetry,
}

impl Site {
    /// Every site.
    pub const ALL: [Site; 13] = [
        Site::GetpagesPbuf,
        Site::GetpagesIo,
        Site::GetpagesDone,
        Site::FaultRelock,
        Site::SplitBusySleep,
        Site::SplitPipWait,
        Site::SplitRestart,
        Site::ForkLocked,
        Site::ForkDone,
        Site::PageoutIo,
        Site::SwapoffUnlocked,
        Site::SwapoffIo,
        Site::FaultBusyRetry,
    ];

    /// The kebab-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Site::GetpagesPbuf => "getpages-pbuf",
            Site::GetpagesIo => "getpages-io",
            Site::GetpagesDone => "getpages-done",
            Site::FaultRelock => "fault-relock",
            Site::SplitBusySleep => "split-busy-sleep",
            Site::SplitPipWait => "split-pip-wait",
            Site::SplitRestart => "split-restart",
            Site::ForkLocked => "fork-locked",
            Site::ForkDone => "fork-done",
            Site::PageoutIo => "pageout-io",
            Site::SwapoffUnlocked => "swapoff-unlocked",
            Site::SwapoffIo => "swapoff-io",
            Site::FaultBusyRetry => "fault-busy-retry",
        }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The host machine of the model.
pub trait Platform: Sync + Send {
    /// Monotonic nanoseconds from an arbitrary origin.
    fn now_ns(&self) -> u64;

    /// One turn of a wait loop (spin hint, yield, or a controlled-scheduler
    /// switch that deprioritizes the caller).
    fn pause(&self);

    /// A turn of a wait loop that has already waited a while: may give the
    /// CPU away until something may have changed (the kernel halts until
    /// its next interrupt). Spins like [`Platform::pause`] by default.
    fn idle(&self) {
        self.pause();
    }

    /// Waste about `ns` nanoseconds (delay injection). Under a controlled
    /// scheduler this is a yield: time does not exist there.
    fn delay(&self, ns: u64);

    /// `cpu` reached `site`. Scripted tests may block here; controlled
    /// schedulers may switch threads. Default: nothing.
    fn site(&self, _cpu: usize, _site: Site) {}

    /// A scheduling point before a lock is taken. Default: nothing.
    fn preempt(&self) {}

    /// Size of the swap device in pages.
    fn swap_pages(&self) -> u64;

    /// Reads `buf.len() / PAGE_SIZE` pages starting at block `blk`.
    fn swap_read(&self, blk: u64, buf: &mut [u8]) -> Result<(), IoError>;

    /// Writes `buf.len() / PAGE_SIZE` pages starting at block `blk`.
    fn swap_write(&self, blk: u64, buf: &[u8]) -> Result<(), IoError>;
}
