//! The swap pager (`swap_pager.c`): per-object swap metadata, `haspage`,
//! `swap_pager_copy`, `getpages` with read-behind/read-ahead, and `putpages`
//! for pageout.
//!
//! `getpages` is where two patch variants act. Baseline (r334544) drops the
//! object lock to take a pbuf *before* it clips read-behind against resident
//! pages and allocates the behind pages — so a `vm_object_split` that ran
//! meanwhile has moved pages away and the clip no longer sees them.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use crate::object::{ObjGuard, ObjInner, ObjKind, VmObject};
use crate::page::FrameId;
use crate::platform::{PAGE_SIZE, Platform, Site};
use crate::stats::Counter;
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm};
use alloc::sync::Arc;

/// Longest contiguous swap run `haspage` reports on either side (`SWB_NPAGES`).
pub const SWB_NPAGES: u64 = 16;

/// One page-in request: the busy page `m` at `pindex`, and the read-behind
/// and read-ahead wishes (clipped in place to what was read).
pub struct PageIn<'a> {
    /// Index of the requested page.
    pub pindex: u64,
    /// The busy page to fill.
    pub m: FrameId,
    /// Read-behind wish; clipped to what was read.
    pub rbehind: &'a mut u64,
    /// Read-ahead wish; clipped to what was read.
    pub rahead: &'a mut u64,
}

/// What the pager did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagerResult {
    /// `VM_PAGER_OK`: the page is valid (still exclusive-busied).
    Ok,
    /// `VM_PAGER_FAIL`: the pager does not have the page.
    Fail,
    /// `VM_PAGER_ERROR`: the read failed.
    Error,
}

/// Swap metadata operations on a locked object.
impl ObjInner {
    /// `swap_pager_haspage`: is `pindex` on swap, and how many contiguous
    /// blocks lie behind and ahead of it?
    pub fn haspage(&self, pindex: u64) -> Option<(u64, u64)> {
        let blk = *self.swblk.get(&pindex)?;
        let mut behind = 0;
        while behind + 1 < SWB_NPAGES
            && behind < pindex
            && blk > behind
            && self.swblk.get(&(pindex - behind - 1)) == Some(&(blk - behind - 1))
        {
            behind += 1;
        }
        let mut ahead = 0;
        while ahead + 1 < SWB_NPAGES
            && self.swblk.get(&(pindex + ahead + 1)) == Some(&(blk + ahead + 1))
        {
            ahead += 1;
        }
        Some((behind, ahead))
    }
}

impl<P: Platform> Vm<P> {
    /// `swp_pager_meta_free_all`: frees every swap block of the object.
    pub(crate) fn swp_meta_free_all(&self, o: &mut ObjInner) {
        for b in core::mem::take(&mut o.swblk).into_values() {
            self.swap.free(b);
        }
    }

    /// `swp_pager_meta_build`: records `pindex -> blk`, converting a default
    /// object to a swap object, and frees the block it replaces.
    pub(crate) fn swp_meta_build(&self, g: &mut ObjGuard, pindex: u64, blk: u64) {
        if g.kind == ObjKind::Default {
            g.kind = ObjKind::Swap;
        }
        if let Some(old) = g.swblk.insert(pindex, blk)
            && old != blk
        {
            self.swap.free(old);
        }
    }

    /// `swp_pager_meta_ctl(SWM_FREE)`: forgets and frees `pindex`'s block.
    pub(crate) fn swp_meta_free(&self, g: &mut ObjGuard, pindex: u64) {
        if let Some(b) = g.swblk.remove(&pindex) {
            self.swap.free(b);
        }
    }

    /// `swap_pager_unswapped`: a page is about to be dirtied; its swap copy
    /// will be stale, so free it.
    pub(crate) fn swap_pager_unswapped(&self, g: &mut ObjGuard, pindex: u64) {
        self.swp_meta_free(g, pindex);
    }

    /// `swap_pager_copy(src, dst, offset, destroysource)`: for every index of
    /// `dst` without swap metadata, take `src`'s block at `index + offset`;
    /// where `dst` already has a block, free `src`'s. With `destroy`, every
    /// remaining block of `src` is freed.
    pub(crate) fn swap_pager_copy(
        &self,
        src: &mut ObjGuard,
        dst: &mut ObjGuard,
        offset: u64,
        destroy: bool,
    ) {
        let moving: Vec<(u64, u64)> = src
            .swblk
            .range(offset..offset.saturating_add(dst.size))
            .map(|(k, v)| (*k, *v))
            .collect();
        for (spindex, blk) in moving {
            let i = spindex - offset;
            src.swblk.remove(&spindex);
            if dst.swblk.contains_key(&i) {
                self.swap.free(blk);
            } else {
                self.swp_meta_build(dst, i, blk);
            }
        }
        if destroy {
            self.swp_meta_free_all(src);
            if src.kind == ObjKind::Swap {
                src.kind = ObjKind::Default;
            }
        }
    }

    /// Clips `rbehind` so the read stops short of the resident predecessor of
    /// `pindex` (the only clipping baseline does, after relocking).
    fn clip_behind(g: &ObjGuard, pindex: u64, rbehind: &mut u64) {
        if let Some((ppred, _)) = g.prev(pindex)
            && pindex - ppred - 1 < *rbehind
        {
            *rbehind = pindex - ppred - 1;
        }
    }

    /// `swap_pager_getpages(object, &m, 1, &rbehind, &rahead)` for the page
    /// `req.m` (exclusive-busied, invalid) at `req.pindex`. Called and returns
    /// with the object locked (the lock is dropped inside). On `Ok` the page
    /// is valid and still busy; the behind/ahead pages are valid and unbusied.
    pub(crate) fn getpages(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        req: PageIn<'_>,
    ) -> Res<(ObjGuard, PagerResult)> {
        self.count(td, Counter::getpages);
        // D22908 site: clustering must not re-create pages that are being
        // moved into another object: no read-behind, and read-ahead limited
        // to the request, on an object being split or collapsed away.
        if self.cfg.sites.getpages_no_cluster_split_dead
            && g.flags & (crate::object::SPLIT | crate::object::DEAD) != 0
        {
            *req.rbehind = 0;
            *req.rahead = 0;
        }
        self.trace(td, Ev::GetpagesEnter, obj.id, req.pindex, *req.rbehind);
        // Window-coverage bookkeeping around the real work.
        let wish_behind = *req.rbehind > 0;
        if wish_behind {
            g.rbehind_inflight += 1;
        }
        self.getpages_locked(td, obj, g, req).map(|(mut g, res)| {
            if wish_behind {
                g.rbehind_inflight -= 1;
            }
            (g, res)
        })
    }

    fn getpages_locked(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        req: PageIn<'_>,
    ) -> Res<(ObjGuard, PagerResult)> {
        let PageIn {
            pindex,
            m,
            rbehind,
            rahead,
        } = req;
        let sites = self.cfg.sites;
        let mut pbuf = None;

        // D15293 site (swap-clip, alc): clip read-behind to the resident
        // predecessor while the object is still locked.
        if sites.getpages_clip_early && *rbehind > 0 {
            Self::clip_behind(&g, pindex, rbehind);
            self.trace(td, Ev::ClipBehind, obj.id, pindex, *rbehind);
        }

        // D15293 site (swap-prealloc, r335171): the pbuf is taken only after
        // every behind/ahead page is allocated, below. Every other variant
        // takes it first, dropping the object lock to do so.
        if !sites.getpages_alloc_before_pbuf {
            drop(g);
            self.trace(td, Ev::GetpagesUnlock, obj.id, pindex, 0);
            self.site(td, Site::GetpagesPbuf)?;
            pbuf = Some(self.getpbuf(td)?);
            g = self.lock_obj(td, obj)?;
            self.trace(td, Ev::GetpagesRelock, obj.id, pindex, 0);
        }

        let Some((maxbehind, maxahead)) = g.haspage(pindex) else {
            if let Some(b) = pbuf {
                self.pbufs.put(b);
            }
            return Ok((g, PagerResult::Fail));
        };

        // Clip the read-ahead and read-behind ranges to exclude resident pages.
        *rahead = (*rahead).min(maxahead);
        if let Some((nsucc, _)) = g.find_least(pindex + 1)
            && nsucc - pindex - 1 < *rahead
        {
            *rahead = nsucc - pindex - 1;
        }
        *rbehind = (*rbehind).min(maxbehind);
        Self::clip_behind(&g, pindex, rbehind);
        self.trace(td, Ev::ClipBehind, obj.id, pindex, *rbehind);

        // Allocate read-behind pages, nearest first; stop at the first
        // failure and keep the ones next to `m`.
        let mut behind: Vec<(u64, FrameId)> = Vec::new();
        for i in 1..=*rbehind {
            let p = pindex - i;
            match self.page_alloc(td, obj, &mut g, p)? {
                Some(f) => {
                    self.trace(td, Ev::AllocBehind, obj.id, p, 0);
                    if g.split_moved
                        .as_ref()
                        .is_some_and(|s: &BTreeSet<u64>| s.contains(&p))
                    {
                        // Oracle observation: split already moved this index
                        // out; whatever happens next, this read is wasted.
                        self.count(td, Counter::wasted);
                    }
                    behind.push((p, f));
                }
                None => break,
            }
        }
        *rbehind = behind.len() as u64;
        let mut ahead: Vec<(u64, FrameId)> = Vec::new();
        for i in 1..=*rahead {
            match self.page_alloc(td, obj, &mut g, pindex + i)? {
                Some(f) => ahead.push((pindex + i, f)),
                None => break,
            }
        }
        *rahead = ahead.len() as u64;

        // The run, in pindex order.
        let mut run: Vec<(u64, FrameId)> = behind.iter().rev().copied().collect();
        run.push((pindex, m));
        run.extend_from_slice(&ahead);
        let count = run.len();
        g.vm_object_pip_add(count as u32);
        for (p, _) in &run {
            if let Some(pg) = g.pages.get_mut(p) {
                pg.swapinprog = true;
            }
        }
        let first = run[0].0;
        let blk = g.swblk.get(&first).copied();
        drop(g);

        // swap-prealloc (above) left the pbuf for now, with every page of
        // the run allocated and busy.
        let mut pbuf = match pbuf {
            Some(b) => b,
            None => {
                self.site(td, Site::GetpagesPbuf)?;
                self.getpbuf(td)?
            }
        };

        self.site(td, Site::GetpagesIo)?;
        self.count(td, Counter::swapins);
        self.count_n(td, Counter::swapin_pages, count as u64);
        self.count_n(td, Counter::rbehind_pages, *rbehind);
        self.count_n(td, Counter::rahead_pages, *rahead);
        self.trace(td, Ev::SwapRead, obj.id, first, count as u64);
        let bytes = count * PAGE_SIZE;
        let t0 = self.p.now_ns();
        let ok = match blk {
            Some(blk) => self.p.swap_read(blk, &mut pbuf.data[..bytes]).is_ok(),
            None => false,
        };
        self.time_since(td, crate::timers::Bucket::SwapRead, t0);
        if ok {
            for (i, (_, f)) in run.iter().enumerate() {
                self.pages
                    .frame(*f)
                    .data
                    .lock()
                    .copy_from_slice(&pbuf.data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]);
            }
        }

        // swp_pager_async_iodone.
        let mut g = self.lock_obj(td, obj)?;
        for (p, f) in &run {
            if let Some(pg) = g.pages.get_mut(p) {
                pg.swapinprog = false;
                pg.valid = ok;
            }
            if *p != pindex {
                if ok {
                    self.pages.xunbusy(*f);
                } else {
                    // A failed read leaves nothing worth keeping.
                    self.page_free(td, obj.id, &mut g, *p)?;
                }
            }
        }
        g.vm_object_pip_wakeupn(count as u32);
        self.pbufs.put(pbuf);
        self.trace(td, Ev::SwapReadDone, obj.id, first, count as u64);
        drop(g);
        self.site(td, Site::GetpagesDone)?;
        let g = self.lock_obj(td, obj)?;
        Ok((
            g,
            if ok {
                PagerResult::Ok
            } else {
                PagerResult::Error
            },
        ))
    }

    /// `swap_pager_putpages` for a contiguous run of dirty, exclusive-busied,
    /// unmapped pages of `obj` starting at `first`: allocates a contiguous
    /// swap run, writes it, and leaves the pages clean and unbusied. Returns
    /// false (pages untouched but unbusied) when swap is full.
    pub(crate) fn putpages(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        first: u64,
        frames: &[FrameId],
    ) -> Res<(ObjGuard, bool)> {
        let n = frames.len() as u64;
        let Some(blk) = self.swap.alloc_run(n) else {
            for f in frames {
                self.pages.xunbusy(*f);
            }
            return Ok((g, false));
        };
        for i in 0..n {
            self.swp_meta_build(&mut g, first + i, blk + i);
            self.trace(td, Ev::Pageout, obj.id, first + i, blk + i);
        }
        g.vm_object_pip_add(n as u32);
        drop(g);
        let mut buf = vec![0u8; frames.len() * PAGE_SIZE];
        for (i, f) in frames.iter().enumerate() {
            buf[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]
                .copy_from_slice(&**self.pages.frame(*f).data.lock());
        }
        self.site(td, Site::PageoutIo)?;
        let t0 = self.p.now_ns();
        let ok = self.p.swap_write(blk, &buf).is_ok();
        self.time_since(td, crate::timers::Bucket::SwapWrite, t0);
        self.count(td, Counter::swapouts);
        let mut g = self.lock_obj(td, obj)?;
        for (i, f) in frames.iter().enumerate() {
            let p = first + i as u64;
            if let Some(pg) = g.pages.get_mut(&p)
                && pg.frame == *f
                && ok
            {
                pg.dirty = false;
            }
            if !ok {
                self.swp_meta_free(&mut g, p);
            }
            self.pages.xunbusy(*f);
        }
        g.vm_object_pip_wakeupn(n as u32);
        if ok {
            self.count_n(td, Counter::pageouts, n);
        }
        Ok((g, ok))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::scenarios::d15293;
    use crate::testutil::*;

    #[test]
    fn haspage_counts_contiguous_blocks() {
        let vm = vm(d15293::BASELINE, 64);
        let mut td = td();
        let p = image(&vm, &mut td, 16, &[]);
        assert_eq!(vm.evict(&mut td, p, 0x100, true).unwrap(), 16);
        let (o, _) = vm.entry_object(&td, p, 0x100).unwrap().unwrap();
        assert_eq!(
            vm.peek_object(&td, &o, |g| g.haspage(8)).unwrap(),
            Some((8, 7))
        );
        assert_eq!(
            vm.peek_object(&td, &o, |g| g.haspage(0)).unwrap(),
            Some((0, 15))
        );
        // Dirtying page 5 frees its block: the run behind 8 stops at 6.
        assert!(vm.store(&mut td, p, 0x105).unwrap());
        assert_eq!(
            vm.peek_object(&td, &o, |g| g.haspage(8)).unwrap(),
            Some((2, 7))
        );
        assert_eq!(vm.peek_object(&td, &o, |g| g.haspage(5)).unwrap(), None);
    }

    #[test]
    fn getpages_clips_against_resident_pages() {
        for v in [d15293::BASELINE, d15293::SWAP_PREALLOC, d15293::SWAP_CLIP] {
            let vm = vm(v, 64);
            let mut td = td();
            let p = image(&vm, &mut td, 16, &[]);
            assert_eq!(vm.evict(&mut td, p, 0x100, true).unwrap(), 16);
            assert!(
                vm.load(&mut td, p, 0x100).unwrap(),
                "swap everything back in"
            );
            for i in (0..16).filter(|i| ![3, 12].contains(i)) {
                assert_eq!(vm.evict(&mut td, p, 0x100 + i, false).unwrap(), 1);
            }
            let before = vm.counters.snapshot();
            assert!(vm.load(&mut td, p, 0x108).unwrap());
            let after = vm.counters.snapshot();
            assert_eq!(
                after.rbehind_pages - before.rbehind_pages,
                4,
                "{v}: 4..7, stopped by 3"
            );
            assert_eq!(
                after.rahead_pages - before.rahead_pages,
                3,
                "{v}: 9..11, stopped by 12"
            );
            assert_eq!(after.swapins - before.swapins, 1, "{v}: one I/O");
            let (pages, _) = layout(&vm, &td, p, 0x100);
            assert_eq!(pages, (3..13).collect::<alloc::vec::Vec<u64>>());
            vm.check_conservation().unwrap();
        }
    }
}
