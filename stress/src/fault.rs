//! `vm_fault`: resolve a page fault of an image at `vpn` — look the address
//! up under the map lock, walk the shadow chain for the page, swap it in
//! with read-behind/ahead (dropping the map lock for the pager), copy it up
//! on write (COW), re-check the map timestamp, and enter it into the pmap.
//! After FreeBSD's `vm_fault_hold` of mid-2018. Not modelled: sequential
//! read-ahead detection (`next_read`), prefaulting, wiring, the COW
//! "move instead of copy" optimisation.

use alloc::format;
use alloc::sync::Arc;

use crate::failure::FailureKind;
use crate::image::Image;
use crate::map::{self, NEEDS_COPY};
use crate::object::{ObjGuard, VmObject};
use crate::page::FrameId;
use crate::platform::{Platform, Site};
use crate::stats::Counter;
use crate::swap_pager::{PageIn, PagerResult};
use crate::sync::RwLockReadGuard;
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm};

/// `VM_FAULT_READ_DEFAULT`: the read-behind/ahead cluster, in pages.
pub const READ_DEFAULT: u64 = 16;

/// Why a fault restarted (trace argument).
#[derive(Clone, Copy)]
#[repr(u8)]
enum Retry {
    BusyPage = 1,
    NoMemory = 2,
    MapBusy = 3,
    MapChanged = 4,
    Shadowed = 5,
    DeadObject = 6,
    Collapsing = 7,
}

/// The fault's state between lookups (`struct faultstate`).
struct Fs<'a> {
    first_object: Arc<VmObject>,
    first_pindex: u64,
    first_m: Option<FrameId>,
    map: Option<RwLockReadGuard<'a, map::MapInner>>,
}

fn same(a: &Arc<VmObject>, b: &Arc<VmObject>) -> bool {
    Arc::ptr_eq(a, b)
}

impl<P: Platform> Vm<P> {
    /// Resolves a fault of image `img` at `vpn`. Returns false when no entry
    /// maps `vpn`.
    pub fn vm_fault(&self, td: &mut Td, img: &Image, vpn: u64, write: bool) -> Res<bool> {
        self.count(td, Counter::faults);
        self.trace(td, Ev::FaultStart, 0, vpn, write as u64);
        let mut first = true;
        loop {
            if !first {
                self.count(td, Counter::fault_retries);
            }
            first = false;
            match self.fault_once(td, img, vpn, write)? {
                None => return Ok(true),
                Some(Err(())) => return Ok(false),
                Some(Ok(reason)) => {
                    self.trace(td, Ev::FaultRetry, 0, vpn, reason as u64);
                    if matches!(reason, Retry::NoMemory) {
                        self.vm_wait(td)?;
                    }
                }
            }
        }
    }

    /// One pass from `RetryFault`: `None` when the page is mapped,
    /// `Some(Ok(reason))` to retry, `Some(Err(()))` when nothing maps `vpn`.
    #[allow(clippy::type_complexity)]
    fn fault_once(
        &self,
        td: &mut Td,
        img: &Image,
        vpn: u64,
        write: bool,
    ) -> Res<Option<Result<Retry, ()>>> {
        // vm_map_lookup.
        let mg = self.map_lock_read(td, img.id, &img.map)?;
        let Some(e) = mg.lookup_entry(vpn) else {
            return Ok(Some(Err(())));
        };
        if write && e.eflags & NEEDS_COPY != 0 {
            // The entry needs its own copy first: upgrade, shadow, retry.
            drop(mg);
            let mut wg = self.map_lock(td, img.id, &img.map)?;
            if let Some(e) = wg.lookup_entry_mut(vpn)
                && e.eflags & NEEDS_COPY != 0
            {
                self.object_shadow(td, e)?;
                e.eflags &= !NEEDS_COPY;
            }
            return Ok(Some(Ok(Retry::Shadowed)));
        }
        let Some(lk) = map::lookup_locked(&mg, vpn, write) else {
            return Ok(Some(Err(())));
        };
        let map_generation = mg.timestamp;
        let mut prot_write = lk.writable;
        let mut fs = Fs {
            first_object: lk.object.clone(),
            first_pindex: lk.pindex,
            first_m: None,
            map: Some(mg),
        };

        // Reference the first object and mark paging in progress.
        let mut g = self.lock_obj(td, &fs.first_object)?;
        g.ref_count += 1;
        g.vm_object_pip_add(1);
        let mut object = fs.first_object.clone();
        let mut pindex = fs.first_pindex;

        // Search for the page along the shadow chain.
        let m: FrameId = loop {
            if g.dead() {
                self.unlock_and_deallocate(td, &object, g, &mut fs)?;
                return Ok(Some(Ok(Retry::DeadObject)));
            }
            let mut invalid = None;
            if let Some(pg) = g.lookup(pindex) {
                if self.pages.busied(pg.frame) {
                    // Wait for the page, then start over.
                    if !same(&object, &fs.first_object) {
                        drop(g);
                        if self.cfg.sites.fault_busy_keeps_placeholder {
                            // The early-2020 fault (the r357091 pair): the
                            // placeholder is released, not freed — an
                            // invalid page stays in the top object.
                            self.release_first_m(td, &mut fs)?;
                        } else {
                            self.free_first_m(td, &mut fs)?;
                        }
                        g = self.lock_obj(td, &object)?;
                    }
                    fs.map = None;
                    let still = g.lookup(pindex).filter(|p| p.frame == pg.frame);
                    if still.is_some() && self.pages.busied(pg.frame) {
                        self.page_busy_sleep(td, g, object.id, pindex, pg.frame)?;
                        g = self.lock_obj(td, &object)?;
                    }
                    g.vm_object_pip_wakeup();
                    drop(g);
                    // A site of the collapse scenario (its delay, scripted
                    // tests): the fault has let go of the chain, its
                    // top-object page freed or left behind. Other scenarios
                    // do not reach it, so their schedules stay as measured.
                    if self.cfg.window == crate::sites::Window::CollapseMetFault {
                        self.site(td, Site::FaultBusyRetry)?;
                    }
                    self.object_deallocate(td, fs.first_object.clone())?;
                    return Ok(Some(Ok(Retry::BusyPage)));
                }
                self.pages.xbusy(pg.frame);
                if pg.valid {
                    break pg.frame;
                }
                // An invalid page a fault left behind (only with
                // `fault_busy_keeps_placeholder`): no data; it serves as
                // this object's page being filled, as if just allocated.
                invalid = Some(pg.frame);
            }

            // Not resident: allocate a page if the pager might have it or this
            // is the top object.
            if let Some(f) = invalid
                && !(g.kind != crate::object::ObjKind::Default || same(&object, &fs.first_object))
            {
                // vm_fault_next: an invalid page below the top is removed.
                self.pages.xunbusy(f);
                self.page_free(td, object.id, &mut g, pindex)?;
            }
            if g.kind != crate::object::ObjKind::Default || same(&object, &fs.first_object) {
                let m = match invalid {
                    Some(f) => f,
                    None => match self.page_alloc(td, &object, &mut g, pindex)? {
                        Some(m) => m,
                        None => {
                            self.unlock_and_deallocate(td, &object, g, &mut fs)?;
                            return Ok(Some(Ok(Retry::NoMemory)));
                        }
                    },
                };
                if g.kind == crate::object::ObjKind::Swap {
                    // Size read-behind/ahead from the cluster and the entry.
                    let cluster_offset = pindex % READ_DEFAULT;
                    let mut behind = cluster_offset.min(vpn - lk.e_start);
                    let mut ahead = (READ_DEFAULT - 1 - cluster_offset).min(lk.e_end - vpn - 1);
                    // Release the map lock before sleeping in the pager.
                    fs.map = None;
                    let (g2, rv) = self.getpages(
                        td,
                        &object,
                        g,
                        PageIn {
                            pindex,
                            m,
                            rbehind: &mut behind,
                            rahead: &mut ahead,
                        },
                    )?;
                    g = g2;
                    match rv {
                        PagerResult::Ok => break m,
                        PagerResult::Error => {
                            return Err(self.fail(
                                td,
                                FailureKind::SwapIo,
                                format!("swap read failed: object {} pindex {}", object.id, pindex),
                            ));
                        }
                        PagerResult::Fail => {}
                    }
                    if !same(&object, &fs.first_object) {
                        self.page_free(td, object.id, &mut g, pindex)?;
                    }
                }
                if same(&object, &fs.first_object) {
                    fs.first_m = Some(m);
                }
            }

            // Move on to the next object, locking it before unlocking this one.
            match g.backing.clone() {
                None => {
                    // Nothing below: zero-fill the page in the top object.
                    if !same(&object, &fs.first_object) {
                        g.vm_object_pip_wakeup();
                        drop(g);
                        object = fs.first_object.clone();
                        pindex = fs.first_pindex;
                        g = self.lock_obj(td, &object)?;
                    }
                    let m = fs.first_m.take().expect("top object has its page");
                    self.pages.zero(m);
                    if let Some(pg) = g.pages.get_mut(&pindex) {
                        pg.valid = true;
                    }
                    self.count(td, Counter::zero_fills);
                    break m;
                }
                Some(next) => {
                    if self.cfg.sites.collapse_concurrent
                        && g.flags & crate::object::COLLAPSING != 0
                    {
                        // D22908 site: the chain below is being collapsed:
                        // step back, wait for the collapse, retry.
                        self.trace(td, Ev::CollapseWait, object.id, pindex, 0);
                        self.count(td, Counter::collapse_waits);
                        let waited = object.clone();
                        if same(&object, &fs.first_object)
                            && let Some(fm) = fs.first_m.take()
                            && g.lookup(fs.first_pindex).is_some_and(|p| p.frame == fm)
                        {
                            // Our placeholder in the top object goes too.
                            self.page_free(td, object.id, &mut g, fs.first_pindex)?;
                        }
                        self.unlock_and_deallocate(td, &object, g, &mut fs)?;
                        self.wait_until(td, crate::vm::Wait::Pip(waited.id), || {
                            waited
                                .lock
                                .try_lock()
                                .is_some_and(|w| w.flags & crate::object::COLLAPSING == 0)
                        })?;
                        return Ok(Some(Ok(Retry::Collapsing)));
                    }
                    let mut ng = self.lock_obj(td, &next)?;
                    ng.vm_object_pip_add(1);
                    if !same(&object, &fs.first_object) {
                        g.vm_object_pip_wakeup();
                    }
                    pindex += g.backing_offset;
                    drop(g);
                    object = next;
                    g = ng;
                }
            }
        };

        // PAGE HAS BEEN FOUND: `m` is exclusive-busied in `object`.
        let mut m = m;
        if !same(&object, &fs.first_object) {
            if write {
                // COW: copy into the top object's page.
                let fm = fs.first_m.take().expect("top object has its page");
                self.pages.copy(m, fm);
                self.pages.xunbusy(m); // release_page
                g.vm_object_pip_wakeup();
                drop(g);
                object = fs.first_object.clone();
                pindex = fs.first_pindex;
                g = self.lock_obj(td, &object)?;
                if let Some(pg) = g.pages.get_mut(&pindex) {
                    pg.valid = true;
                }
                m = fm;
                self.count(td, Counter::cow_faults);
            } else {
                prot_write = false;
            }
        }

        // We must verify that the map has not changed since our last lookup.
        if fs.map.is_none() {
            // The page stays busy while the object is briefly unlocked here
            // (a site for delay injection and scripted tests).
            drop(g);
            self.site(td, Site::FaultRelock)?;
            g = self.lock_obj(td, &object)?;
            let Some(mg) = img.map.lock.try_read() else {
                self.pages.xunbusy(m);
                self.unlock_and_deallocate(td, &object, g, &mut fs)?;
                return Ok(Some(Ok(Retry::MapBusy)));
            };
            // D15293 site (no-timestamp-recheck): skip the re-check.
            if mg.timestamp != map_generation && !self.cfg.sites.fault_skip_timestamp_recheck {
                let again = map::lookup_locked(&mg, vpn, write);
                let changed = match &again {
                    None => true,
                    Some(l) => !same(&l.object, &fs.first_object) || l.pindex != fs.first_pindex,
                };
                if changed {
                    drop(mg);
                    self.count(td, Counter::fault_timestamp_retries);
                    self.pages.xunbusy(m);
                    self.unlock_and_deallocate(td, &object, g, &mut fs)?;
                    return Ok(Some(Ok(Retry::MapChanged)));
                }
                if let Some(l) = again {
                    prot_write &= l.writable;
                }
            }
            fs.map = Some(mg);
        }

        // vm_fault_dirty: a write dirties the page and invalidates its swap copy.
        let writable = write && prot_write;
        if writable {
            if let Some(pg) = g.pages.get_mut(&pindex) {
                pg.dirty = true;
            }
            self.swap_pager_unswapped(&mut g, pindex);
        }
        drop(g);
        self.pmap_enter(td, img.id, vpn, m, writable)?;
        self.trace(td, Ev::FaultDone, object.id, pindex, m as u64);
        let g = self.lock_obj(td, &object)?;
        self.pages.xunbusy(m);
        self.unlock_and_deallocate(td, &object, g, &mut fs)?;
        Ok(None)
    }

    /// Frees the top object's placeholder page and its paging reference.
    fn free_first_m(&self, td: &Td, fs: &mut Fs<'_>) -> Res<()> {
        let mut fg = self.lock_obj(td, &fs.first_object)?;
        if let Some(fm) = fs.first_m.take()
            && fg.lookup(fs.first_pindex).is_some_and(|p| p.frame == fm)
        {
            self.page_free(td, fs.first_object.id, &mut fg, fs.first_pindex)?;
        }
        fg.vm_object_pip_wakeup();
        Ok(())
    }

    /// Releases the top object's placeholder page — unbusied, left invalid
    /// in the object — and its paging reference (`fault_page_release`).
    fn release_first_m(&self, td: &Td, fs: &mut Fs<'_>) -> Res<()> {
        let mut fg = self.lock_obj(td, &fs.first_object)?;
        if let Some(fm) = fs.first_m.take()
            && fg.lookup(fs.first_pindex).is_some_and(|p| p.frame == fm)
        {
            self.pages.xunbusy(fm);
            self.count(td, Counter::placeholders_left);
            self.trace(
                td,
                Ev::PlaceholderLeft,
                fs.first_object.id,
                fs.first_pindex,
                0,
            );
        }
        fg.vm_object_pip_wakeup();
        Ok(())
    }

    /// `unlock_and_deallocate`: drop paging references, the top object's
    /// placeholder page, the fault's object reference and the map lock.
    fn unlock_and_deallocate(
        &self,
        td: &Td,
        object: &Arc<VmObject>,
        mut g: ObjGuard,
        fs: &mut Fs<'_>,
    ) -> Res<()> {
        g.vm_object_pip_wakeup();
        drop(g);
        if !same(object, &fs.first_object) {
            self.free_first_m(td, fs)?;
        }
        self.object_deallocate(td, fs.first_object.clone())?;
        fs.map = None;
        Ok(())
    }

    /// `vm_object_shadow`: give a `NEEDS_COPY` entry a new top object that
    /// shadows the old one — unless nobody else references the old one.
    pub(crate) fn object_shadow(&self, td: &Td, e: &mut map::Entry) -> Res<()> {
        let source = e.object.clone();
        {
            let g = self.lock_obj(td, &source)?;
            if g.ref_count == 1 && g.anonymous() {
                return Ok(());
            }
        }
        let result = self.object_allocate(crate::object::ObjKind::Default, e.end - e.start);
        {
            let mut rg = self.lock_obj(td, &result)?;
            rg.backing = Some(source.clone());
            rg.backing_offset = e.offset;
        }
        {
            let mut sg = self.lock_obj(td, &source)?;
            sg.shadows.push(Arc::downgrade(&result));
            sg.shadow_count += 1;
        }
        // The entry's reference on `source` moves to `result`'s backing pointer.
        e.object = result;
        e.offset = 0;
        self.count(td, Counter::shadows);
        Ok(())
    }

    /// `vm_wait`: no free page. The model has no separate page daemon
    /// context to sleep for, so the faulting thread reclaims directly, then
    /// waits for any free page.
    pub(crate) fn vm_wait(&self, td: &mut Td) -> Res<()> {
        if self.pages.free_count() > 0 {
            return Ok(());
        }
        self.pageout_pass(td, 8)?;
        self.wait_until(td, crate::vm::Wait::FreePages, || {
            self.pages.free_count() > 0
        })
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::scenarios::d15293;
    use crate::testutil::*;

    #[test]
    fn write_after_fork_copies_into_a_shadow() {
        let vm = vm(d15293::BASELINE, 64);
        let mut td = td();
        let p = image(&vm, &mut td, 4, &[]);
        let c = vm.vmspace_fork(&mut td, p).unwrap().unwrap();
        let (shared, _) = vm.entry_object(&td, p, 0x100).unwrap().unwrap();
        assert!(
            vm.store(&mut td, p, 0x100).unwrap(),
            "parent writes version 2"
        );
        let s = vm.counters.snapshot();
        assert_eq!((s.shadows, s.cow_faults), (1, 1));
        let (top, _) = vm.entry_object(&td, p, 0x100).unwrap().unwrap();
        assert_ne!(top.id, shared.id);
        let backing = vm
            .peek_object(&td, &top, |g| g.backing.as_ref().map(|b| b.id))
            .unwrap();
        assert_eq!(backing, Some(shared.id));
        // The child still reads version 1 (its expectation), the parent 2.
        assert!(vm.load(&mut td, c, 0x100).unwrap());
        assert!(vm.load(&mut td, p, 0x100).unwrap());
        assert!(vm.store(&mut td, c, 0x101).unwrap(), "child writes too");
        assert!(vm.load(&mut td, p, 0x101).unwrap());
        vm.check_conservation().unwrap();
        vm.vmspace_exit(&mut td, c).unwrap();
        vm.check_conservation().unwrap();
    }

    #[test]
    fn zero_fill_reads_zeros() {
        let vm = vm(d15293::BASELINE, 16);
        let mut td = td();
        let p = vm
            .create_image(
                &mut td,
                &[crate::fork::Region {
                    start: 0x10,
                    pages: 2,
                    clips: alloc::vec![],
                }],
            )
            .unwrap()
            .unwrap();
        assert!(vm.load(&mut td, p, 0x10).unwrap());
        assert!(!vm.load(&mut td, p, 0x12).unwrap(), "nothing maps 0x12");
        assert_eq!(vm.counters.snapshot().zero_fills, 1);
    }
}
