//! The physical-buffer pool for swap reads (`getpbuf(&nsw_rcount)`): a small
//! fixed number of I/O buffers. When the pool is empty `getpbuf` sleeps —
//! in the race this sleep is what holds a fault inside `getpages` with the
//! object unlocked. Sleepers are served in arrival order (a ticket each), as
//! FreeBSD's sleep queue wakes them: a spinning free-for-all would let the
//! fastest CPUs starve a slow one for seconds.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::platform::{PAGE_SIZE, Platform};
use crate::stats::Counter;
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm, Wait};

/// Pages one pbuf can carry (read-behind + the page + read-ahead).
pub const PBUF_PAGES: usize = 32;

/// One I/O buffer.
pub struct Pbuf {
    /// The buffer: `PBUF_PAGES` pages.
    pub data: Box<[u8]>,
}

/// The pool.
pub struct PbufPool {
    free: spin::Mutex<Vec<Pbuf>>,
    /// Next ticket to hand out, and the ticket whose turn it is.
    next: AtomicU64,
    serving: AtomicU64,
}

impl PbufPool {
    /// `n` buffers (at least one).
    pub fn new(n: usize) -> Self {
        let free = (0..n.max(1))
            .map(|_| Pbuf {
                data: vec![0u8; PBUF_PAGES * PAGE_SIZE].into_boxed_slice(),
            })
            .collect();
        PbufPool {
            free: spin::Mutex::new(free),
            next: AtomicU64::new(0),
            serving: AtomicU64::new(0),
        }
    }

    /// A buffer for ticket `t`, if it is `t`'s turn and one is free.
    fn try_get(&self, t: u64) -> Option<Pbuf> {
        if self.serving.load(Ordering::Acquire) != t {
            return None;
        }
        let b = self.free.lock().pop()?;
        self.serving.fetch_add(1, Ordering::AcqRel);
        Some(b)
    }

    /// `relpbuf`.
    pub fn put(&self, b: Pbuf) {
        self.free.lock().push(b);
    }
}

impl<P: Platform> Vm<P> {
    /// `getpbuf`: takes a buffer, sleeping while the pool is empty.
    pub(crate) fn getpbuf(&self, td: &Td) -> Res<Pbuf> {
        self.p.preempt();
        let t = self.pbufs.next.fetch_add(1, Ordering::AcqRel);
        if let Some(b) = self.pbufs.try_get(t) {
            self.trace(td, Ev::PbufGot, 0, 0, 0);
            return Ok(b);
        }
        self.count(td, Counter::pbuf_sleeps);
        self.trace(td, Ev::PbufSleep, 0, 0, 0);
        let b = self.keep_trying(td, Wait::Pbuf, || self.pbufs.try_get(t))?;
        self.trace(td, Ev::PbufGot, 0, 0, 0);
        Ok(b)
    }

    /// Takes every free pbuf, so that the next `getpbuf` sleeps. For scripted
    /// tests that replay "the pool is empty".
    pub fn pbuf_take_all(&self) -> Vec<Pbuf> {
        core::mem::take(&mut *self.pbufs.free.lock())
    }

    /// Gives pbufs taken by [`Vm::pbuf_take_all`] back.
    pub fn pbuf_return(&self, bufs: Vec<Pbuf>) {
        self.pbufs.free.lock().extend(bufs);
    }
}
