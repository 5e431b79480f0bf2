//! Physical pages (`vm_page`): the frame table, the free list, the busy
//! state and each frame's 4 KiB of contents.
//!
//! A frame's identity — which object and pindex it belongs to, `valid`,
//! `dirty` — lives in its object's page map and changes only under that
//! object's lock, as in FreeBSD. Here a frame keeps what is read without the
//! object lock: the busy word (sleepers poll it), a generation bumped on every
//! free (so a sleeper notices its page was freed and reused), a back pointer
//! to its owner (the page daemon's `m->object`, trusted only after taking the
//! object's lock and re-checking), the reverse mappings (pv list) and the data.
//!
//! The frame-local locks are leaves: nothing else is locked, no site is
//! passed and no wait happens while one is held.

use alloc::boxed::Box;
use alloc::sync::Weak;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::object::VmObject;
use crate::platform::PAGE_SIZE;

/// Index of a frame in the frame table.
pub type FrameId = u32;

/// Contents of one page.
pub type PageData = [u8; PAGE_SIZE];

/// Who a frame belongs to (a hint until the owner's lock is taken).
#[derive(Clone)]
pub struct Owner {
    /// The owning object.
    pub obj: Weak<VmObject>,
    /// Its id.
    pub obj_id: u32,
    /// The page index in it.
    pub pindex: u64,
}

/// One physical page.
pub struct Frame {
    busy: AtomicU32,
    generation: AtomicU32,
    pub(crate) owner: spin::Mutex<Option<Owner>>,
    pub(crate) data: spin::Mutex<Box<PageData>>,
    /// Reverse mappings: (image, vpn) pairs whose pmap maps this frame.
    pub(crate) pv: spin::Mutex<Vec<(u32, u64)>>,
}

/// The frame table and its free list.
pub struct PageTable {
    frames: Vec<Frame>,
    free: spin::Mutex<Vec<FrameId>>,
}

impl PageTable {
    /// `n` frames, all free and zeroed.
    pub fn new(n: usize) -> Self {
        let frames = (0..n)
            .map(|_| Frame {
                busy: AtomicU32::new(0),
                generation: AtomicU32::new(0),
                owner: spin::Mutex::new(None),
                data: spin::Mutex::new(Box::new([0u8; PAGE_SIZE])),
                pv: spin::Mutex::new(Vec::new()),
            })
            .collect();
        // Pop from the end: hand out low frame numbers first.
        let free = (0..n as FrameId).rev().collect();
        PageTable {
            frames,
            free: spin::Mutex::new(free),
        }
    }

    /// Frames in total.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    #[inline]
    /// Frame `f`.
    pub fn frame(&self, f: FrameId) -> &Frame {
        &self.frames[f as usize]
    }

    /// Frames on the free list.
    pub fn free_count(&self) -> usize {
        self.free.lock().len()
    }

    /// Takes a free frame, exclusive-busied (as `vm_page_alloc` returns it).
    /// The caller inserts it into an object under that object's lock.
    pub(crate) fn take_free(&self) -> Option<FrameId> {
        let f = self.free.lock().pop()?;
        let fr = self.frame(f);
        fr.busy.store(1, Ordering::Release);
        Some(f)
    }

    /// Returns a frame to the free list. The caller has removed it from its
    /// object and from every pmap.
    pub(crate) fn put_free(&self, f: FrameId) {
        let fr = self.frame(f);
        *fr.owner.lock() = None;
        fr.generation.fetch_add(1, Ordering::AcqRel);
        fr.busy.store(0, Ordering::Release);
        self.free.lock().push(f);
    }

    /// `vm_page_busied`.
    #[inline]
    pub fn busied(&self, f: FrameId) -> bool {
        self.frame(f).busy.load(Ordering::Acquire) != 0
    }

    /// `vm_page_xbusy` on a page the caller saw unbusied under its object lock.
    #[inline]
    pub(crate) fn xbusy(&self, f: FrameId) {
        self.frame(f).busy.store(1, Ordering::Release);
    }

    /// `vm_page_xunbusy`: wakes sleepers (they poll).
    #[inline]
    pub(crate) fn xunbusy(&self, f: FrameId) {
        self.frame(f).busy.store(0, Ordering::Release);
    }

    /// Generation of a frame (changes each time it is freed).
    #[inline]
    pub fn generation(&self, f: FrameId) -> u32 {
        self.frame(f).generation.load(Ordering::Acquire)
    }

    /// True if some pmap maps the frame.
    pub fn mapped(&self, f: FrameId) -> bool {
        !self.frame(f).pv.lock().is_empty()
    }

    /// Fills a frame with zeros (`pmap_zero_page`).
    pub(crate) fn zero(&self, f: FrameId) {
        self.frame(f).data.lock().fill(0);
    }

    /// Copies `src`'s contents into `dst` (`pmap_copy_page`).
    pub(crate) fn copy(&self, src: FrameId, dst: FrameId) {
        if src == dst {
            return;
        }
        // Lock in frame order: two CPUs copying in opposite directions
        // cannot deadlock.
        let (a, b) = (self.frame(src), self.frame(dst));
        if src < dst {
            let s = a.data.lock();
            b.data.lock().copy_from_slice(&s[..]);
        } else {
            let mut d = b.data.lock();
            d.copy_from_slice(&a.data.lock()[..]);
        }
    }
}
