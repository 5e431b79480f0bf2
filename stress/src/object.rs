//! VM objects (`vm_object`): resident pages, swap metadata, references,
//! shadow chains, paging-in-progress, and their life cycle — allocate,
//! reference, deallocate (with the collapse it may trigger), terminate and
//! collapse — after FreeBSD's `vm_object.c` of mid-2018. `vm_object_split`
//! lives in `split.rs`.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::failure::FailureKind;
use crate::page::{FrameId, Owner};
use crate::platform::Platform;
use crate::sites::Window;
use crate::stats::Counter;
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm, Wait};

/// `OBJ_ONEMAPPING`: every page is mapped by at most one map entry.
pub const ONEMAPPING: u32 = 1 << 0;
/// `OBJ_NOSPLIT`.
pub const NOSPLIT: u32 = 1 << 1;
/// `OBJ_DEAD`: being terminated or collapsed away.
pub const DEAD: u32 = 1 << 2;
/// `OBJ_COLLAPSING`: a collapse into this object is in progress (D22908).
pub const COLLAPSING: u32 = 1 << 3;
/// `OBJ_SPLIT`: `vm_object_split` is moving this object's pages (D22908).
pub const SPLIT: u32 = 1 << 4;

/// `object->type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    /// `OBJT_DEFAULT`: anonymous memory with no pager yet (zero fill).
    Default,
    /// `OBJT_SWAP`: anonymous memory with swap metadata.
    Swap,
    /// `OBJT_DEAD`.
    Dead,
}

/// A resident page as its object sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pg {
    /// The frame holding the page.
    pub frame: FrameId,
    /// `vm_page_all_valid`: contents loaded.
    pub valid: bool,
    /// Modified since last written to swap.
    pub dirty: bool,
    /// `VPO_SWAPINPROG`.
    pub swapinprog: bool,
}

/// An object's state, protected by its lock.
pub struct ObjInner {
    /// `type`.
    pub kind: ObjKind,
    /// Size in pages.
    pub size: u64,
    /// `ref_count`.
    pub ref_count: u32,
    /// `shadow_count`.
    pub shadow_count: u32,
    /// `flags` (`DEAD`, `ONEMAPPING`, `SPLIT`, ...).
    pub flags: u32,
    /// `backing_object`.
    pub backing: Option<Arc<VmObject>>,
    /// `backing_object_offset`, in pages.
    pub backing_offset: u64,
    /// `shadow_head`: objects whose backing object this is.
    pub shadows: Vec<Weak<VmObject>>,
    /// `memq`/`rtree`: resident pages by pindex.
    pub pages: BTreeMap<u64, Pg>,
    /// Swap metadata: pindex -> swap block.
    pub swblk: BTreeMap<u64, u64>,
    /// `paging_in_progress`.
    pub pip: u32,
    /// Model instrumentation (not FreeBSD): getpages calls with a read-behind
    /// wish in flight on this object, for the window-coverage oracle.
    pub rbehind_inflight: u32,
    /// Model instrumentation: while a split of this object is in progress,
    /// the pindexes it has already moved out (for the wasted-read count).
    pub split_moved: Option<BTreeSet<u64>>,
}

/// The raw lock under an object lock.
pub type RawSpin = spin::Mutex<()>;

/// One VM object.
pub struct VmObject {
    /// Model id (trace events and failures name it).
    pub id: u32,
    /// Behind an `Arc` of its own so that a held lock (an owned guard) does
    /// not borrow the object: the fault walks shadow chains lock in hand.
    pub(crate) lock: Arc<lock_api::Mutex<RawSpin, ObjInner>>,
}

/// A held object lock (`VM_OBJECT_WLOCK`).
pub type ObjGuard = lock_api::ArcMutexGuard<RawSpin, ObjInner>;

/// `vm_page_insert` found the index occupied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occupied(pub FrameId);

impl ObjInner {
    /// `vm_object_pip_add`: `n` more paging operations in progress on this
    /// object.
    #[inline]
    pub fn vm_object_pip_add(&mut self, n: u32) {
        self.pip += n;
    }

    /// `vm_object_pip_wakeupn`: `n` paging operations done. The model's
    /// waiters poll `pip` (see `pip_wait`), so waking them is the decrement.
    #[inline]
    pub fn vm_object_pip_wakeupn(&mut self, n: u32) {
        self.pip -= n;
    }

    /// `vm_object_pip_wakeup`: one paging operation done
    /// (`vm_object_pip_wakeupn(1)`).
    #[inline]
    pub fn vm_object_pip_wakeup(&mut self) {
        self.vm_object_pip_wakeupn(1);
    }

    /// `vm_page_lookup`.
    pub fn lookup(&self, pindex: u64) -> Option<Pg> {
        self.pages.get(&pindex).copied()
    }

    /// `vm_page_find_least`: first resident page at or after `pindex`.
    pub fn find_least(&self, pindex: u64) -> Option<(u64, Pg)> {
        self.pages.range(pindex..).next().map(|(k, v)| (*k, *v))
    }

    /// The resident page just before `pindex` (`TAILQ_PREV`).
    pub fn prev(&self, pindex: u64) -> Option<(u64, Pg)> {
        self.pages
            .range(..pindex)
            .next_back()
            .map(|(k, v)| (*k, *v))
    }

    /// Is this an anonymous object (default or swap)?
    pub fn anonymous(&self) -> bool {
        matches!(self.kind, ObjKind::Default | ObjKind::Swap)
    }

    /// `OBJ_DEAD` set or `OBJT_DEAD`: being or been terminated.
    pub fn dead(&self) -> bool {
        self.flags & DEAD != 0 || self.kind == ObjKind::Dead
    }
}

impl<P: Platform> Vm<P> {
    /// `vm_object_allocate(type, size)`: one reference, `ONEMAPPING`.
    pub fn object_allocate(&self, kind: ObjKind, size: u64) -> Arc<VmObject> {
        let id = self.new_object_id();
        Arc::new(VmObject {
            id,
            lock: Arc::new(lock_api::Mutex::new(ObjInner {
                kind,
                size,
                ref_count: 1,
                shadow_count: 0,
                flags: ONEMAPPING,
                backing: None,
                backing_offset: 0,
                shadows: Vec::new(),
                pages: BTreeMap::new(),
                swblk: BTreeMap::new(),
                pip: 0,
                rbehind_inflight: 0,
                split_moved: None,
            })),
        })
    }

    /// `VM_OBJECT_WLOCK`.
    pub fn lock_obj(&self, td: &Td, obj: &VmObject) -> Res<ObjGuard> {
        self.p.preempt();
        self.wait_for(td, Wait::ObjectLock(obj.id), || obj.lock.try_lock_arc())
    }

    /// Inserts a page at `pindex`; the caller holds the object lock.
    pub(crate) fn page_insert(
        &self,
        obj: &Arc<VmObject>,
        g: &mut ObjGuard,
        pindex: u64,
        pg: Pg,
    ) -> Result<(), Occupied> {
        if let Some(old) = g.pages.get(&pindex) {
            return Err(Occupied(old.frame));
        }
        g.pages.insert(pindex, pg);
        *self.pages.frame(pg.frame).owner.lock() = Some(Owner {
            obj: Arc::downgrade(obj),
            obj_id: obj.id,
            pindex,
        });
        Ok(())
    }

    /// `vm_page_alloc(object, pindex, VM_ALLOC_NORMAL)`: a new exclusive-busied,
    /// invalid page, or `None` when no frame is free. Inserting over a resident
    /// page is a duplicate-page failure.
    pub(crate) fn page_alloc(
        &self,
        td: &Td,
        obj: &Arc<VmObject>,
        g: &mut ObjGuard,
        pindex: u64,
    ) -> Res<Option<FrameId>> {
        let Some(frame) = self.pages.take_free() else {
            return Ok(None);
        };
        let pg = Pg {
            frame,
            valid: false,
            dirty: false,
            swapinprog: false,
        };
        if let Err(Occupied(other)) = self.page_insert(obj, g, pindex, pg) {
            self.pages.put_free(frame);
            return Err(self.fail(
                td,
                FailureKind::DuplicatePage,
                format!(
                    "vm_page_alloc: object {} pindex {} already holds frame {}",
                    obj.id, pindex, other
                ),
            ));
        }
        Ok(Some(frame))
    }

    /// `vm_page_free`: removes the page from its object and frees its frame.
    /// FreeBSD requires the page to be unmapped (`KASSERT(!pmap_page_is_mapped)`);
    /// a mapped page here is a freed-mapped failure: a pmap would keep using
    /// a frame that is free for anyone.
    pub(crate) fn page_free(&self, td: &Td, obj_id: u32, g: &mut ObjGuard, pindex: u64) -> Res<()> {
        let Some(pg) = g.pages.remove(&pindex) else {
            return Ok(());
        };
        if let Some(&(img, vpn)) = self.pages.frame(pg.frame).pv.lock().first() {
            return Err(self.fail(
                td,
                FailureKind::FreedMapped,
                format!(
                    "freeing object {obj_id} pindex {pindex} (frame {}) still mapped by image {img} at vpn {vpn}",
                    pg.frame
                ),
            ));
        }
        self.pages.put_free(pg.frame);
        Ok(())
    }

    /// Unmaps a page everywhere and frees it.
    pub(crate) fn page_unmap_free(
        &self,
        td: &Td,
        obj_id: u32,
        g: &mut ObjGuard,
        pindex: u64,
    ) -> Res<()> {
        if let Some(pg) = g.lookup(pindex) {
            self.pmap_remove_all(td, pg.frame)?;
        }
        self.page_free(td, obj_id, g, pindex)
    }

    /// `vm_page_busy_sleep`: drops the object lock and sleeps until the page
    /// is unbusied or freed. The caller looks the page up again afterwards.
    pub(crate) fn page_busy_sleep(
        &self,
        td: &Td,
        g: ObjGuard,
        obj_id: u32,
        pindex: u64,
        frame: FrameId,
    ) -> Res<()> {
        let generation = self.pages.generation(frame);
        drop(g);
        self.busy_wait(td, obj_id, pindex, frame, generation)
    }

    /// The sleep of [`Self::page_busy_sleep`], with no lock held: until the
    /// page is unbusied or the frame has been freed since `generation`.
    pub(crate) fn busy_wait(
        &self,
        td: &Td,
        obj_id: u32,
        pindex: u64,
        frame: FrameId,
        generation: u32,
    ) -> Res<()> {
        self.wait_until(
            td,
            Wait::Busy {
                obj: obj_id,
                pindex: pindex as u32,
            },
            || !self.pages.busied(frame) || self.pages.generation(frame) != generation,
        )
    }

    /// `vm_object_pip_wait`: sleeps (lock dropped) until paging-in-progress
    /// drains; returns with the lock held again.
    pub(crate) fn pip_wait(&self, td: &Td, obj: &VmObject, mut g: ObjGuard) -> Res<ObjGuard> {
        while g.pip != 0 {
            drop(g);
            self.wait_until(td, Wait::Pip(obj.id), || {
                obj.lock.try_lock().is_some_and(|g| g.pip == 0)
            })?;
            g = self.lock_obj(td, obj)?;
        }
        Ok(g)
    }

    /// `vm_object_reference`.
    pub fn object_reference(&self, td: &Td, obj: &Arc<VmObject>) -> Res<()> {
        self.lock_obj(td, obj)?.ref_count += 1;
        Ok(())
    }

    /// `vm_object_deallocate`: drops one reference. At one reference left, an
    /// object with a single shadow is collapsed into that shadow; at zero the
    /// object is terminated and its backing object loses a reference in turn.
    pub fn object_deallocate(&self, td: &Td, obj: Arc<VmObject>) -> Res<()> {
        let mut next = Some(obj);
        while let Some(obj) = next.take() {
            let mut g = self.lock_obj(td, &obj)?;
            if g.ref_count == 0 {
                return Err(self.fail(
                    td,
                    FailureKind::Conservation,
                    format!("object {} deallocated with no references left", obj.id),
                ));
            }
            g.ref_count -= 1;
            if g.ref_count > 1 {
                return Ok(());
            }
            if g.ref_count == 1 {
                if g.shadow_count == 0 && g.anonymous() {
                    g.flags |= ONEMAPPING;
                    return Ok(());
                }
                if g.shadow_count != 1 || !g.anonymous() {
                    return Ok(());
                }
                let Some(robject) = g.shadows.iter().find_map(Weak::upgrade) else {
                    return Ok(());
                };
                let Some(mut rg) = robject.lock.try_lock_arc() else {
                    // Lock order is shadow before backing: back off and retry.
                    g.ref_count += 1;
                    drop(g);
                    self.pause(td)?;
                    next = Some(obj);
                    continue;
                };
                if rg.dead() || !rg.anonymous() {
                    return Ok(());
                }
                rg.ref_count += 1;
                // Wait out paging on both before collapsing (D22908 site:
                // no more: its collapse runs with faults in flight).
                let mut og = Some(g);
                loop {
                    if self.cfg.sites.collapse_concurrent {
                        break;
                    }
                    if rg.pip != 0 {
                        drop(og.take());
                        rg = self.pip_wait(td, &robject, rg)?;
                    } else {
                        match og.take() {
                            Some(g) if g.pip != 0 => {
                                drop(rg);
                                drop(self.pip_wait(td, &obj, g)?);
                                rg = self.lock_obj(td, &robject)?;
                            }
                            other => {
                                og = other;
                                break;
                            }
                        }
                    }
                    if !rg.backing.as_ref().is_some_and(|b| Arc::ptr_eq(b, &obj)) {
                        break;
                    }
                    og = Some(self.lock_obj(td, &obj)?);
                }
                drop(og);
                if rg.ref_count == 1 {
                    rg.ref_count -= 1;
                    next = self.object_doterm(td, &robject, rg)?;
                    continue;
                }
                let rg = self.object_collapse(td, &robject, rg)?;
                drop(rg);
                next = Some(robject);
                continue;
            }
            next = self.object_doterm(td, &obj, g)?;
        }
        Ok(())
    }

    /// The `doterm:` tail of `vm_object_deallocate`: unlink from the backing
    /// object, terminate, and return the backing object to deallocate next.
    fn object_doterm(
        &self,
        td: &Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
    ) -> Res<Option<Arc<VmObject>>> {
        let temp = g.backing.take();
        if let Some(b) = &temp {
            let mut bg = self.lock_obj(td, b)?;
            bg.shadows
                .retain(|w| !core::ptr::eq(w.as_ptr(), Arc::as_ptr(obj)));
            bg.shadow_count = bg.shadow_count.saturating_sub(1);
        }
        if g.flags & DEAD == 0 {
            self.object_terminate(td, obj, g)?;
        }
        Ok(temp)
    }

    /// `vm_object_terminate`: waits for paging to finish, frees every page and
    /// swap block, and marks the object dead.
    pub(crate) fn object_terminate(
        &self,
        td: &Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
    ) -> Res<()> {
        g.flags |= DEAD;
        g = self.pip_wait(td, obj, g)?;
        while let Some((pindex, pg)) = g.find_least(0) {
            if self.pages.busied(pg.frame) {
                self.page_busy_sleep(td, g, obj.id, pindex, pg.frame)?;
                g = self.lock_obj(td, obj)?;
                continue;
            }
            // Nothing may map a page of an object nobody references.
            self.page_free(td, obj.id, &mut g, pindex)?;
        }
        self.swp_meta_free_all(&mut g);
        g.kind = ObjKind::Dead;
        self.live_objects.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// `vm_object_collapse`: while the backing object is anonymous and
    /// referenced only by this object, pull its pages and swap into this
    /// object and drop it from the chain (a full collapse); when it has other
    /// references but this object shadows all of it, skip it (the bypass,
    /// with `collapse_bypass`). Before D22908 a collapse waits until no
    /// paging is in progress on either object — meanwhile it only frees what
    /// is shadowed (`vm_object_qcollapse`, with `collapse_quick`); D22908
    /// runs it with faults in flight (`collapse_concurrent`).
    ///
    /// Like FreeBSD's scan, freeing a page some pmap still maps is the
    /// "freeing mapped page" assertion (a `freed-mapped` failure).
    pub(crate) fn object_collapse(
        &self,
        td: &Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
    ) -> Res<ObjGuard> {
        let s = self.cfg.sites;
        loop {
            let Some(backing) = g.backing.clone() else {
                return Ok(g);
            };
            let mut bg = self.lock_obj(td, &backing)?;
            if !bg.anonymous() || bg.dead() || !g.anonymous() || g.dead() {
                return Ok(g);
            }
            // D22908 site: one collapse at a time (vm_object_backing_collapse_wait).
            if s.collapse_concurrent && (g.flags | bg.flags) & COLLAPSING != 0 {
                return Ok(g);
            }
            let in_flight = g.pip != 0 || bg.pip != 0;
            if in_flight && !s.collapse_concurrent {
                // D22908 site (removed by it): vm_object_qcollapse.
                if s.collapse_quick && bg.ref_count == 1 {
                    self.window(td, Window::CollapseMetFault);
                    self.object_qcollapse(td, obj, &mut g, backing.id, &mut bg)?;
                }
                return Ok(g);
            }
            if bg.ref_count != 1 {
                if s.collapse_bypass && self.scan_all_shadowed(&g, &bg) {
                    g = self.object_bypass(td, obj, g, &backing, bg)?;
                    continue;
                }
                return Ok(g);
            }
            if in_flight {
                // Window coverage: the scan starts while a fault is inside
                // the parent or the backing object.
                self.window(td, Window::CollapseMetFault);
            }
            g.vm_object_pip_add(1);
            bg.vm_object_pip_add(1);
            if s.collapse_dead_at_start {
                bg.flags |= DEAD;
            }
            if s.collapse_concurrent {
                g.flags |= COLLAPSING;
            }
            let offset = g.backing_offset;
            // vm_object_collapse_scan (before D22908: backing_scan(OBSC_COLLAPSE_WAIT)).
            loop {
                let mut slept = false;
                let keys: Vec<u64> = bg.pages.keys().copied().collect();
                for p in keys {
                    let Some(pg) = bg.lookup(p) else { continue };
                    if self.pages.busied(pg.frame) {
                        drop(g);
                        self.page_busy_sleep(td, bg, backing.id, p, pg.frame)?;
                        g = self.lock_obj(td, obj)?;
                        bg = self.lock_obj(td, &backing)?;
                        slept = true;
                        break;
                    }
                    let inside = p >= offset && p - offset < g.size;
                    if !inside {
                        self.collapse_free(td, backing.id, &mut bg, p)?;
                        continue;
                    }
                    let np = p - offset;
                    // r357091 site: an invalid page (left by a fault that
                    // retried) is not data: free it.
                    if s.collapse_checks_valid && !pg.valid {
                        self.page_free(td, backing.id, &mut bg, p)?;
                        continue;
                    }
                    let mut pp = g.lookup(np);
                    if let Some(ppg) = pp
                        && s.collapse_busy_parent_wait
                        && self.pages.busied(ppg.frame)
                    {
                        // r291576 site: the parent's page is busy and maybe
                        // not valid yet: wait for its owner, then rescan.
                        drop(bg);
                        self.page_busy_sleep(td, g, obj.id, np, ppg.frame)?;
                        g = self.lock_obj(td, obj)?;
                        bg = self.lock_obj(td, &backing)?;
                        slept = true;
                        break;
                    }
                    if let Some(ppg) = pp
                        && s.collapse_checks_valid
                        && !ppg.valid
                        && !self.pages.busied(ppg.frame)
                    {
                        // r357091 site: an invalid page of the parent does
                        // not shadow the backing page; p replaces it.
                        self.page_free(td, obj.id, &mut g, np)?;
                        pp = None;
                    }
                    if pp.is_some() || g.swblk.contains_key(&np) {
                        // Shadowed: the backing page goes — and, in FreeBSD's
                        // scan, its swap space with it (swap_pager_freespace).
                        // Not under a clean parent page without swap: the
                        // model's fault can leave a clean copy-on-write copy
                        // that its page daemon drops (as in `shadows`).
                        let clean_copy = pp.is_some_and(|pp| pp.valid && !pp.dirty)
                            && !g.swblk.contains_key(&np);
                        if s.collapse_asserts_unmapped && !clean_copy {
                            self.swp_meta_free(&mut bg, p);
                        }
                        self.collapse_free(td, backing.id, &mut bg, p)?;
                    } else if let Some(pg) = bg.pages.remove(&p)
                        && self.page_insert(obj, &mut g, np, pg).is_err()
                    {
                        return Err(self.fail(
                            td,
                            FailureKind::DuplicatePage,
                            format!("collapse: object {} pindex {} occupied", obj.id, np),
                        ));
                    }
                }
                if !slept && s.collapse_concurrent && bg.pip > 1 {
                    // D22908 site: faults are still inside the backing
                    // object; let them leave, then scan what they left.
                    drop(g);
                    drop(bg);
                    self.wait_until(td, Wait::Pip(backing.id), || {
                        backing.lock.try_lock().is_some_and(|b| b.pip <= 1)
                    })?;
                    g = self.lock_obj(td, obj)?;
                    bg = self.lock_obj(td, &backing)?;
                    slept = true;
                }
                if !slept {
                    break;
                }
            }
            if bg.kind == crate::object::ObjKind::Swap {
                self.swap_pager_copy(&mut bg, &mut g, offset, true);
            }
            // The backing object's backing becomes ours; its place in its
            // backing's shadow list passes to us (shadow_count unchanged).
            let bb = bg.backing.take();
            if let Some(bb) = &bb {
                let mut bbg = self.lock_obj(td, bb)?;
                for w in bbg.shadows.iter_mut() {
                    if core::ptr::eq(w.as_ptr(), Arc::as_ptr(&backing)) {
                        *w = Arc::downgrade(obj);
                    }
                }
            }
            g.backing = bb;
            g.backing_offset += bg.backing_offset;
            bg.vm_object_pip_wakeup();
            bg.kind = ObjKind::Dead;
            bg.flags |= DEAD;
            bg.ref_count = 0;
            bg.shadows.clear();
            bg.shadow_count = 0;
            drop(bg);
            self.live_objects.fetch_sub(1, Ordering::Relaxed);
            g.vm_object_pip_wakeup();
            g.flags &= !COLLAPSING;
            self.count(td, Counter::collapses);
            self.trace(td, Ev::Collapse, obj.id, 0, backing.id as u64);
        }
    }

    /// Frees a backing page for the collapse scan (its swap block is left
    /// to `swap_pager_copy`): with `collapse_asserts_unmapped` as FreeBSD
    /// does (a mapped page is the "freeing mapped page" assertion),
    /// otherwise unmapping it first (the model's older collapse, kept for the
    /// D15293 scenario).
    fn collapse_free(&self, td: &Td, obj_id: u32, g: &mut ObjGuard, p: u64) -> Res<()> {
        if self.cfg.sites.collapse_asserts_unmapped {
            self.page_free(td, obj_id, g, p)
        } else {
            self.page_unmap_free(td, obj_id, g, p)
        }
    }

    /// `vm_object_qcollapse` (before D22908): with paging in progress, free
    /// the backing object's pages that are outside the parent or shadowed by
    /// it, skipping busy and invalid ones — and, as FreeBSD's guard for the
    /// race it knew of, indices where the parent's page is not valid yet.
    fn object_qcollapse(
        &self,
        td: &Td,
        obj: &Arc<VmObject>,
        g: &mut ObjGuard,
        backing_id: u32,
        bg: &mut ObjGuard,
    ) -> Res<()> {
        let offset = g.backing_offset;
        let keys: Vec<u64> = bg.pages.keys().copied().collect();
        for p in keys {
            let Some(pg) = bg.lookup(p) else { continue };
            if self.pages.busied(pg.frame) || !pg.valid {
                continue;
            }
            let inside = p >= offset && p - offset < g.size;
            if inside {
                let np = p - offset;
                let pp = g.lookup(np);
                if pp.is_some_and(|pp| !pp.valid) {
                    continue;
                }
                // r291576 site: OBSC_COLLAPSE_NOWAIT meets a busy parent
                // page (a fault may still map the backing one): skip it.
                if self.cfg.sites.collapse_busy_parent_wait
                    && pp.is_some_and(|pp| self.pages.busied(pp.frame))
                {
                    continue;
                }
                if pp.is_none() && !g.swblk.contains_key(&np) {
                    continue;
                }
            }
            self.trace(td, Ev::QuickCollapse, obj.id, p, backing_id as u64);
            self.swp_meta_free(bg, p);
            self.page_free(td, backing_id, bg, p)?;
        }
        Ok(())
    }

    /// `vm_object_scan_all_shadowed`: does this object shadow every page
    /// and swap block of its backing object in its range? A busy backing
    /// page says no (a CoW may be under way); an invalid parent page does
    /// not shadow; an invalid backing page says no with `collapse_checks_valid`
    /// (r357091 site).
    fn scan_all_shadowed(&self, g: &ObjGuard, bg: &ObjGuard) -> bool {
        let offset = g.backing_offset;
        let range = offset..offset.saturating_add(g.size);
        for (&p, pg) in bg.pages.range(range.clone()) {
            if self.pages.busied(pg.frame) || (self.cfg.sites.collapse_checks_valid && !pg.valid) {
                return false;
            }
            if !self.shadows(g, p - offset) {
                return false;
            }
        }
        bg.swblk
            .range(range)
            .all(|(&p, _)| self.shadows(g, p - offset))
    }

    /// Whether the parent has data of its own at `np`: swap, or a valid page
    /// that is dirty. (FreeBSD counts any valid page; the model's fault can
    /// leave a clean copy-on-write copy without a swap block, which its page
    /// daemon may drop — counting it would lose data the real kernel keeps.)
    fn shadows(&self, g: &ObjGuard, np: u64) -> bool {
        g.lookup(np).is_some_and(|pp| pp.valid && pp.dirty) || g.swblk.contains_key(&np)
    }

    /// The bypass: this object now shadows its backing object's backing
    /// object (with a reference on it); the skipped object loses this
    /// object as a shadow and a reference (it keeps at least one).
    fn object_bypass(
        &self,
        td: &Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        backing: &Arc<VmObject>,
        mut bg: ObjGuard,
    ) -> Res<ObjGuard> {
        let bb = bg.backing.clone();
        if let Some(bb) = &bb {
            let mut bbg = self.lock_obj(td, bb)?;
            bbg.ref_count += 1;
            bbg.shadows.push(Arc::downgrade(obj));
            bbg.shadow_count += 1;
        }
        bg.shadows
            .retain(|w| !core::ptr::eq(w.as_ptr(), Arc::as_ptr(obj)));
        bg.shadow_count = bg.shadow_count.saturating_sub(1);
        bg.ref_count -= 1;
        g.backing_offset += bg.backing_offset;
        g.backing = bb;
        self.trace(td, Ev::Bypass, obj.id, 0, backing.id as u64);
        Ok(g)
    }
}
