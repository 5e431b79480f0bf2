//! `swapoff(2)`: empty one swap device while the machine runs — after
//! FreeBSD's `swap_pager_swapoff` → `swap_pager_swapoff_object` of 2019–2020
//! — and add it back (`swapon`), so that a run can cycle.
//!
//! The device is marked closing (no new blocks go there); every object with
//! blocks on it is visited and each such block is paged in and freed (the
//! page is dirtied: its only copy is now in memory), pass after pass until
//! the device holds nothing. The object lock is dropped on the way — to
//! sleep on a busy page, to wait for memory, in the pager — and three sites
//! (r358024, D45668) decide what swapoff trusts after it relocks:
//!
//! - before r358024 it grabs a run of pages for the blocks it looked up
//!   (sleeping on busy ones with the lock dropped) and reads the run as the
//!   contiguous blocks behind the first page's block;
//! - r358024 allocates one page under the lock, pages in through
//!   `swap_pager_getpages` with read-ahead (the pager looks the blocks up
//!   with the pages busy) and restarts its scan of the swap cluster after
//!   every relock (the re-validation); without the restart it goes on with
//!   the cluster it looked up before;
//! - D45668 dirties the pages it read at once instead of on the next pass.
//!
//! Oracles here: a block used after the object stopped owning it
//! (`SwapUseAfterFree`), and conservation across the removal (every block
//! of the device freed exactly once). The scenario's window: swapoff had
//! the object unlocked while another thread changed its swap metadata.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::failure::FailureKind;
use crate::object::{ObjGuard, ObjKind, VmObject};
use crate::page::FrameId;
use crate::platform::{PAGE_SIZE, Platform, Site};
use crate::sites::Window;
use crate::stats::Counter;
use crate::swap_pager::{PageIn, PagerResult, SWB_NPAGES};
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm};

/// Passes over every object before swapoff gives up (FreeBSD retries its
/// full rescan 100 times, pausing 50 ms in between, then panics "failed to
/// locate swap blocks").
pub const MAX_PASSES: u32 = 100;

/// The pause between two passes (FreeBSD: `hz / 20`; the model's machine
/// is far smaller, and its passes far shorter).
pub const PASS_PAUSE_NS: u64 = 1_000_000;

/// Longest run the pre-r358024 code grabs and reads at once (in pages).
pub const MAX_RUN: u64 = SWB_NPAGES;

impl<P: Platform> Vm<P> {
    /// `swap_pager_swapoff`: empties device `dev` (its blocks paged in and
    /// freed) and audits that every block it held was freed exactly once.
    /// The device stays closed until [`Vm::swapon`].
    pub fn swapoff(&self, td: &mut Td, dev: usize) -> Res<()> {
        if !self.swap.close(dev) {
            return Ok(());
        }
        self.trace(td, Ev::SwapoffStart, 0, 0, dev as u64);
        let at_close = self.swap.audit(dev).used_at_close;
        self.count_n(td, Counter::swapoff_blocks, at_close);
        let mut passes = 0;
        while self.swap.dev_used(dev) > 0 {
            passes += 1;
            if passes > MAX_PASSES {
                let mut held = Vec::new();
                for o in self.swap_objects(td)? {
                    let g = self.lock_obj(td, &o)?;
                    for (p, b) in g.swblk.iter() {
                        if self.swap.dev_of(*b) == Some(dev) {
                            held.push(format!(
                                "obj {} {:?} flags {:#x} ref {} pindex {p} (page {:?}, busy {}, pip {})",
                                o.id,
                                g.kind,
                                g.flags,
                                g.ref_count,
                                g.lookup(*p),
                                g.lookup(*p).is_some_and(|pg| self.pages.busied(pg.frame)),
                                g.pip
                            ));
                        }
                    }
                }
                return Err(self.fail(
                    td,
                    FailureKind::Conservation,
                    format!(
                        "swapoff: failed to locate {} swap blocks of device {dev} in {MAX_PASSES} passes; \
                         reachable objects hold {}: {}; CPUs wait on {:?}",
                        self.swap.dev_used(dev),
                        held.len(),
                        held.join(", "),
                        self.waits()
                    ),
                ));
            }
            for obj in self.swap_objects(td)? {
                let g = self.lock_obj(td, &obj)?;
                if g.dead() || g.kind != ObjKind::Swap || !self.has_blocks_on(&g, dev) {
                    continue;
                }
                let mut g = g;
                g.vm_object_pip_add(1);
                let mut g = self.swapoff_object(td, &obj, g, dev)?;
                g.vm_object_pip_wakeup();
                drop(g);
                self.beat(td);
            }
            if self.swap.dev_used(dev) > 0 {
                // Objects may be locked, paging to the device, or between
                // owners (a process exiting): wait, then rescan.
                self.p.delay(PASS_PAUSE_NS);
                self.beat(td);
                self.check()?;
            }
        }
        let a = self.swap.audit(dev);
        if a.freed != a.used_at_close || a.double_frees != 0 {
            return Err(self.fail(
                td,
                FailureKind::Conservation,
                format!(
                    "swapoff of device {dev}: {} blocks at close, {} freed, {} freed twice",
                    a.used_at_close, a.freed, a.double_frees
                ),
            ));
        }
        self.count(td, Counter::swapoffs);
        self.trace(td, Ev::SwapoffDone, 0, 0, dev as u64);
        Ok(())
    }

    /// `swapon`: device `dev` takes new blocks again.
    pub fn swapon(&self, dev: usize) {
        self.swap.reopen(dev);
    }

    /// Cuts the swap disk into `n` devices (before any block is in use).
    pub fn set_swap_devices(&self, n: usize) -> bool {
        self.swap.set_devices(n)
    }

    /// Swap devices.
    pub fn swap_devices(&self) -> usize {
        self.swap.devices()
    }

    /// Blocks in use on device `dev`.
    pub fn swap_dev_used(&self, dev: usize) -> u64 {
        self.swap.dev_used(dev)
    }

    fn has_blocks_on(&self, g: &ObjGuard, dev: usize) -> bool {
        g.swblk.values().any(|b| self.swap.dev_of(*b) == Some(dev))
    }

    /// The object list swapoff walks (`vm_object_list`): every object
    /// reachable from a live image, through backing chains.
    fn swap_objects(&self, td: &Td) -> Res<Vec<Arc<VmObject>>> {
        let mut seen: BTreeMap<u32, Arc<VmObject>> = BTreeMap::new();
        for id in self.images.live() {
            let img = self.images.get(id);
            let mut todo: Vec<Arc<VmObject>> = {
                let m = self.map_lock_read(td, id, &img.map)?;
                m.entries.values().map(|e| e.object.clone()).collect()
            };
            while let Some(o) = todo.pop() {
                if seen.contains_key(&o.id) {
                    continue;
                }
                if let Some(b) = self.lock_obj(td, &o)?.backing.clone() {
                    todo.push(b);
                }
                seen.insert(o.id, o);
            }
        }
        Ok(seen.into_values().collect())
    }

    /// Window coverage: the object's swap metadata changed while swapoff
    /// had it unlocked (`before` is what it saw when it dropped the lock).
    fn swapoff_relocked(&self, td: &Td, before: &BTreeMap<u64, u64>, g: &ObjGuard) {
        if *before != g.swblk {
            self.window(td, Window::SwapoffMetaChanged);
        }
    }

    /// Drops the object lock, runs `f` (which may sleep), passes the
    /// swapoff-unlocked site, relocks and counts the window.
    fn swapoff_unlocked(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        g: ObjGuard,
        pindex: u64,
        f: impl FnOnce(&Self, &mut Td, ObjGuard) -> Res<()>,
    ) -> Res<ObjGuard> {
        let before = g.swblk.clone();
        self.trace(td, Ev::SwapoffUnlock, obj.id, pindex, 0);
        f(self, td, g)?;
        self.site(td, Site::SwapoffUnlocked)?;
        let g = self.lock_obj(td, obj)?;
        self.swapoff_relocked(td, &before, &g);
        Ok(g)
    }

    /// `swp_pager_force_dirty`: the page is valid in memory; dirty it and
    /// free its block (`swap_pager_unswapped`).
    fn swapoff_force_dirty(&self, td: &Td, obj: &VmObject, g: &mut ObjGuard, pindex: u64) {
        if let Some(pg) = g.pages.get_mut(&pindex) {
            pg.dirty = true;
        }
        self.swap_pager_unswapped(g, pindex);
        self.trace(td, Ev::SwapoffDirty, obj.id, pindex, 0);
    }

    /// `swap_pager_swapoff_object`: pages in and frees every block of `obj`
    /// on `dev`. Called and returns with the object locked (and its
    /// paging-in-progress raised by the caller).
    fn swapoff_object(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        g: ObjGuard,
        dev: usize,
    ) -> Res<ObjGuard> {
        if self.cfg.sites.swapoff_getpages {
            self.swapoff_object_getpages(td, obj, g, dev)
        } else {
            self.swapoff_object_runs(td, obj, g, dev)
        }
    }

    /// The first run of blocks on `dev` at or after `from`: contiguous in
    /// pindex and in block, at most [`MAX_RUN`] long.
    fn device_run(&self, g: &ObjGuard, from: u64, dev: usize) -> Option<(u64, u64, u64)> {
        let mut run: Option<(u64, u64, u64)> = None;
        for (&p, &b) in g.swblk.range(from..) {
            let on = self.swap.dev_of(b) == Some(dev);
            match &mut run {
                None if on => run = Some((p, b, 1)),
                None => {}
                Some((p0, b0, n)) => {
                    if on && *n < MAX_RUN && p == *p0 + *n && b == *b0 + *n {
                        *n += 1;
                    } else {
                        break;
                    }
                }
            }
        }
        run
    }

    /// Before r358024: runs of blocks, each grabbed and forced in.
    fn swapoff_object_runs(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        dev: usize,
    ) -> Res<ObjGuard> {
        let mut pi = 0;
        while let Some((p0, _b0, n)) = self.device_run(&g, pi, dev) {
            if g.dead() {
                break;
            }
            g = self.force_pagein_run(td, obj, g, p0, n)?;
            pi = p0;
        }
        Ok(g)
    }

    /// `swp_pager_force_pagein(object, pindex, npages)` before r358024:
    /// `vm_page_grab_pages` over the run (sleeping on busy pages with the
    /// lock dropped, keeping the pages already grabbed), then every stretch
    /// of invalid pages is read as the contiguous blocks behind its first
    /// page's block, dirtied and unswapped; valid pages are just dirtied.
    fn force_pagein_run(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        p0: u64,
        n: u64,
    ) -> Res<ObjGuard> {
        g.vm_object_pip_add(n as u32);
        // vm_page_grab_pages.
        let mut ma: Vec<(FrameId, bool)> = Vec::new();
        while (ma.len() as u64) < n {
            let p = p0 + ma.len() as u64;
            match g.lookup(p) {
                Some(pg) if self.pages.busied(pg.frame) => {
                    let (id, f) = (obj.id, pg.frame);
                    g = self.swapoff_unlocked(td, obj, g, p, |vm, td, g| {
                        vm.page_busy_sleep(td, g, id, p, f)
                    })?;
                }
                Some(pg) => {
                    self.pages.xbusy(pg.frame);
                    ma.push((pg.frame, pg.valid));
                }
                None => match self.page_alloc(td, obj, &mut g, p)? {
                    Some(f) => ma.push((f, false)),
                    None => {
                        g = self.swapoff_unlocked(td, obj, g, p, |vm, td, g| {
                            drop(g);
                            vm.vm_wait(td)
                        })?;
                    }
                },
            }
        }
        let mut j = 0usize;
        for i in 0..=ma.len() {
            if i < ma.len() && !ma[i].1 {
                continue;
            }
            if j < i {
                g = self.read_stretch(td, obj, g, p0 + j as u64, &ma[j..i])?;
            }
            if i == ma.len() {
                break;
            }
            self.swapoff_force_dirty(td, obj, &mut g, p0 + i as u64);
            self.pages.xunbusy(ma[i].0);
            j = i + 1;
        }
        g.vm_object_pip_wakeupn(n as u32);
        Ok(g)
    }

    /// `swap_pager_getpages(object, ma, count, NULL, NULL)` as the
    /// pre-r358024 swapoff calls it: the block of the first page, and the
    /// ones after it for the others (the pager assumed the run swapoff
    /// found is still contiguous), then dirty and unswap every page.
    fn read_stretch(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        first: u64,
        frames: &[(FrameId, bool)],
    ) -> Res<ObjGuard> {
        let count = frames.len() as u64;
        let Some(blk) = g.swblk.get(&first).copied() else {
            return Err(self.fail(
                td,
                FailureKind::SwapUseAfterFree,
                format!(
                    "swapoff pages in object {} pindex {first}, which has no swap block any more \
                     (freed while swapoff slept): FreeBSD panics, read from swap failed",
                    obj.id
                ),
            ));
        };
        // Oracle: every block read must still be the object's at its index.
        for k in 0..count {
            let owned = g.swblk.get(&(first + k)).copied();
            if owned != Some(blk + k) {
                let state = if self.swap.allocated(blk + k) {
                    "allocated to someone else"
                } else {
                    "free"
                };
                return Err(self.fail(
                    td,
                    FailureKind::SwapUseAfterFree,
                    format!(
                        "swapoff reads object {} pindex {} from swap block {} ({state}), but the \
                         object holds {} there: its block changed while swapoff slept",
                        obj.id,
                        first + k,
                        blk + k,
                        owned.map_or("none".into(), |b| format!("block {b}"))
                    ),
                ));
            }
        }
        for k in 0..count {
            if let Some(pg) = g.pages.get_mut(&(first + k)) {
                pg.swapinprog = true;
            }
        }
        self.trace(td, Ev::SwapoffRead, obj.id, first, blk);
        // The pages are busy: nobody changes their metadata while the
        // lock is dropped for the read (the window may still open on others).
        let before = g.swblk.clone();
        drop(g);
        self.site(td, Site::SwapoffIo)?;
        let mut pbuf = self.getpbuf(td)?;
        let bytes = frames.len() * PAGE_SIZE;
        let ok = self.p.swap_read(blk, &mut pbuf.data[..bytes]).is_ok();
        if ok {
            for (i, (f, _)) in frames.iter().enumerate() {
                self.pages
                    .frame(*f)
                    .data
                    .lock()
                    .copy_from_slice(&pbuf.data[i * PAGE_SIZE..(i + 1) * PAGE_SIZE]);
            }
        }
        self.pbufs.put(pbuf);
        let mut g = self.lock_obj(td, obj)?;
        self.swapoff_relocked(td, &before, &g);
        if !ok {
            return Err(self.fail(
                td,
                FailureKind::SwapIo,
                format!("swapoff: swap read failed at block {blk}"),
            ));
        }
        self.count(td, Counter::swapins);
        self.count_n(td, Counter::swapin_pages, count);
        self.count_n(td, Counter::swapoff_pageins, count);
        for (k, (f, _)) in frames.iter().enumerate() {
            let p = first + k as u64;
            if let Some(pg) = g.pages.get_mut(&p) {
                pg.swapinprog = false;
                pg.valid = true;
            }
            self.swapoff_force_dirty(td, obj, &mut g, p);
            self.pages.xunbusy(*f);
        }
        Ok(g)
    }

    /// r358024: per swap cluster (`struct swblk`, [`SWB_NPAGES`] indexes),
    /// dirty the valid pages, page the others in through getpages with
    /// read-ahead, and — the re-validation — restart the cluster after
    /// every relock. Without it, the cluster looked up before goes on.
    fn swapoff_object_getpages(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        dev: usize,
    ) -> Res<ObjGuard> {
        let sites = self.cfg.sites;
        let mut pi = 0;
        'cluster: loop {
            if g.dead() {
                break;
            }
            // SWAP_PCTRIE_LOOKUP_GE: the next cluster holding any block.
            let Some(base) = g.swblk.range(pi..).next().map(|(p, _)| p - p % SWB_NPAGES) else {
                break;
            };
            let sb: Vec<(u64, u64)> = g
                .swblk
                .range(base..base + SWB_NPAGES)
                .map(|(p, b)| (*p, *b))
                .filter(|(_, b)| self.swap.dev_of(*b) == Some(dev))
                .collect();
            let mut unlocked = false;
            for &(p, b) in &sb {
                if unlocked && !g.swblk.range(base..base + SWB_NPAGES).any(|_| true) {
                    // The cluster's swblk was freed while the lock was
                    // dropped, and swapoff still reads sb->d[].
                    return Err(self.fail(
                        td,
                        FailureKind::SwapUseAfterFree,
                        format!(
                            "swapoff reads the swap metadata of object {} pindex {base}..{} \
                             after it was freed (the lock was dropped and not re-validated)",
                            obj.id,
                            base + SWB_NPAGES
                        ),
                    ));
                }
                let m = match g.lookup(p) {
                    None => match self.page_alloc(td, obj, &mut g, p)? {
                        Some(m) => m,
                        None => {
                            g = self.swapoff_unlocked(td, obj, g, p, |vm, td, g| {
                                drop(g);
                                vm.vm_wait(td)
                            })?;
                            continue 'cluster;
                        }
                    },
                    Some(pg) if pg.swapinprog => {
                        let (id, f) = (obj.id, pg.frame);
                        g = self.swapoff_unlocked(td, obj, g, p, |vm, td, g| {
                            vm.page_busy_sleep(td, g, id, p, f)
                        })?;
                        continue 'cluster;
                    }
                    Some(pg) if pg.valid && !self.pages.busied(pg.frame) => {
                        self.swapoff_force_dirty(td, obj, &mut g, p);
                        continue;
                    }
                    // vm_page_tryxbusy failed: leave it for the next pass.
                    Some(_) => continue,
                };
                g.vm_object_pip_add(1);
                let mut behind = 0;
                let mut ahead = SWB_NPAGES - 1;
                let before = g.swblk.clone();
                self.trace(td, Ev::SwapoffUnlock, obj.id, p, b);
                let (g2, rv) = self.getpages(
                    td,
                    obj,
                    g,
                    PageIn {
                        pindex: p,
                        m,
                        rbehind: &mut behind,
                        rahead: &mut ahead,
                    },
                )?;
                g = g2;
                self.swapoff_relocked(td, &before, &g);
                unlocked = true;
                g.vm_object_pip_wakeup();
                match rv {
                    PagerResult::Ok => {}
                    PagerResult::Fail => {
                        return Err(self.fail(
                            td,
                            FailureKind::SwapUseAfterFree,
                            format!(
                                "swapoff pages in object {} pindex {p} for swap block {b} it \
                                 looked up before dropping the lock; the object holds no block \
                                 there now: FreeBSD panics, read from swap failed",
                                obj.id
                            ),
                        ));
                    }
                    PagerResult::Error => {
                        return Err(self.fail(
                            td,
                            FailureKind::SwapIo,
                            format!("swapoff: swap read failed at object {} pindex {p}", obj.id),
                        ));
                    }
                }
                self.count_n(td, Counter::swapoff_pageins, 1 + ahead);
                if sites.swapoff_dirty_after_read {
                    // D45668 site: dirty what was read, now.
                    for q in p..=p + ahead {
                        if g.lookup(q).is_some_and(|pg| pg.valid) {
                            self.swapoff_force_dirty(td, obj, &mut g, q);
                        }
                    }
                }
                self.pages.xunbusy(m);
                if sites.swapoff_revalidate {
                    // r358024 site: the lock was dropped; look again.
                    continue 'cluster;
                }
            }
            pi = base + SWB_NPAGES;
        }
        Ok(g)
    }
}
