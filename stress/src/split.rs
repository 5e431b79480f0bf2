//! `vm_object_split`: at fork, give a clipped map entry its own object.
//!
//! The new object covers just the entry, shadows the original's backing
//! object, and takes the entry's resident pages and then its swap blocks.
//! The page loop sleeps on busy pages and restarts from `find_least(start)` —
//! the restart is where baseline meets pages that `getpages` re-created
//! behind its back (review D15293). Four variants act here, each at one site.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::sync::Arc;

use crate::failure::FailureKind;
use crate::map::Entry;
use crate::object::{COLLAPSING, ONEMAPPING, ObjKind, SPLIT, VmObject};
use crate::platform::{Platform, Site};
use crate::sites::{SplitSkip, Window};
use crate::stats::Counter;
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm, Wait};

impl<P: Platform> Vm<P> {
    /// Splits `entry`'s object if it is anonymous and has more than one
    /// reference; on return `entry` points at the new object (offset 0).
    /// Called with the parent map exclusively locked.
    pub(crate) fn object_split(&self, td: &mut Td, entry: &mut Entry) -> Res<()> {
        let orig = entry.object.clone();
        let size = entry.end - entry.start;
        let offidxstart = entry.offset;
        let mut og = self.lock_obj(td, &orig)?;
        if !og.anonymous() || og.ref_count <= 1 {
            return Ok(());
        }
        // D22908 site: wait for a collapse into the object to settle
        // (vm_object_collapse_wait); OBJ_SPLIT is set below, with the locks.
        while self.cfg.sites.split_waits_collapse && og.flags & COLLAPSING != 0 {
            drop(og);
            self.wait_until(td, Wait::Pip(orig.id), || {
                orig.lock
                    .try_lock()
                    .is_some_and(|g| g.flags & COLLAPSING == 0)
            })?;
            og = self.lock_obj(td, &orig)?;
            if !og.anonymous() || og.ref_count <= 1 {
                return Ok(());
            }
        }

        // D15293 site (split-pipwait, alc's thought): wait for
        // paging-in-progress on the original object to drain first.
        if self.cfg.sites.split_pip_wait && og.pip != 0 {
            self.count(td, Counter::split_pip_waits);
            if og.rbehind_inflight > 0 {
                // Window coverage: split found a read-behind swap-in of this
                // object in flight (this variant waits it out first).
                self.window(td, Window::SplitMetReadBehind);
            }
            self.trace(td, Ev::SplitPipWait, orig.id, offidxstart, og.pip as u64);
            drop(og);
            self.site(td, Site::SplitPipWait)?;
            og = self.lock_obj(td, &orig)?;
            og = self.pip_wait(td, &orig, og)?;
            if !og.anonymous() || og.ref_count <= 1 {
                return Ok(());
            }
        }
        drop(og);

        let new = self.object_allocate(ObjKind::Default, size);
        let mut ng = self.lock_obj(td, &new)?;
        let mut og = self.lock_obj(td, &orig)?;
        if self.cfg.sites.split_waits_collapse && og.flags & COLLAPSING != 0 {
            // D22908 site: a collapse began while the lock was dropped:
            // leave the object unsplit this time.
            drop(og);
            drop(ng);
            return self.object_deallocate(td, new);
        }
        self.trace(td, Ev::SplitStart, orig.id, offidxstart, size);
        if let Some(source) = og.backing.clone() {
            let mut sg = self.lock_obj(td, &source)?;
            if sg.dead() {
                drop(sg);
                drop(og);
                drop(ng);
                self.object_deallocate(td, new)?;
                return Ok(());
            }
            sg.shadows.push(Arc::downgrade(&new));
            sg.shadow_count += 1;
            sg.ref_count += 1;
            sg.flags &= !ONEMAPPING;
            ng.backing_offset = og.backing_offset + entry.offset;
            ng.backing = Some(source.clone());
        }
        og.split_moved = Some(BTreeSet::new());
        if self.cfg.sites.split_waits_collapse {
            og.flags |= SPLIT;
        }
        self.count(td, Counter::splits);

        let mut restart_at = offidxstart;
        'retry: loop {
            let mut cursor = restart_at;
            while let Some((pindex, pg)) = og.find_least(cursor) {
                let idx = pindex - offidxstart;
                if idx >= size {
                    break;
                }
                cursor = pindex + 1;

                // We must wait for pending I/O to complete before we can
                // rename the page.
                if self.pages.busied(pg.frame) {
                    self.count(td, Counter::split_busy_sleeps);
                    if og.rbehind_inflight > 0 {
                        // Window coverage: split met a busy page while a
                        // read-behind swap-in of this object is in flight.
                        self.window(td, Window::SplitMetReadBehind);
                    }
                    self.trace(td, Ev::SplitBusySleep, orig.id, pindex, 0);
                    let generation = self.pages.generation(pg.frame);
                    drop(ng);
                    drop(og);
                    self.site(td, Site::SplitBusySleep)?;
                    self.busy_wait(td, orig.id, pindex, pg.frame, generation)?;
                    self.site(td, Site::SplitRestart)?;
                    ng = self.lock_obj(td, &new)?;
                    og = self.lock_obj(td, &orig)?;
                    // D15293 site (split-restart, alc): resume at the busy
                    // page's pindex instead of the start of the range.
                    restart_at = if self.cfg.sites.split_restart_at_busy {
                        pindex
                    } else {
                        offidxstart
                    };
                    self.trace(td, Ev::SplitRestart, orig.id, restart_at, 0);
                    continue 'retry;
                }

                // D15293 site (split-skip, kib's first diff; split-skip-inverted,
                // the same check with the condition inverted): an original page
                // whose index the new object already holds was re-created
                // behind our back; free it instead of renaming it.
                let held = ng.pages.contains_key(&idx);
                let skip = match self.cfg.sites.split_skip {
                    SplitSkip::Held => held,
                    SplitSkip::NotHeld => !held,
                    SplitSkip::Off => false,
                };
                if skip {
                    self.trace(td, Ev::SplitDiscard, orig.id, pindex, 0);
                    self.count(td, Counter::discarded);
                    self.page_unmap_free(td, orig.id, &mut og, pindex)?;
                    continue;
                }

                // vm_page_rename(m, new_object, idx).
                let Some(pg) = og.pages.remove(&pindex) else {
                    continue;
                };
                if let Err(crate::object::Occupied(other)) =
                    self.page_insert(&new, &mut ng, idx, pg)
                {
                    let moved_before = og.split_moved.as_ref().is_some_and(|s| s.contains(&pindex));
                    let (kind, why) = if moved_before {
                        (
                            FailureKind::Repopulated,
                            "the original object was repopulated behind split's back: this index had already been moved before split slept",
                        )
                    } else {
                        (
                            FailureKind::DuplicatePage,
                            "the new object already holds this index",
                        )
                    };
                    return Err(self.fail(
                        td,
                        kind,
                        format!(
                            "vm_object_split: renaming object {} pindex {} (frame {}) into object {} pindex {}: occupied by frame {}; {}",
                            orig.id, pindex, pg.frame, new.id, idx, other, why
                        ),
                    ));
                }
                if let Some(s) = og.split_moved.as_mut() {
                    s.insert(pindex);
                }
                self.count(td, Counter::split_pages_moved);
                self.trace(td, Ev::SplitMove, orig.id, pindex, 0);
                if og.kind == ObjKind::Swap {
                    // Stays busy until its swap block has moved too.
                    self.pages.xbusy(pg.frame);
                }
            }
            break;
        }

        if og.kind == ObjKind::Swap {
            self.swap_pager_copy(&mut og, &mut ng, offidxstart, false);
            for pg in ng.pages.values() {
                self.pages.xunbusy(pg.frame);
            }
        }
        let moved = ng.pages.len() as u64;

        // Oracle: resident pages left in the split range are unreachable
        // now (no entry maps this range of the original any more): leaked
        // until the original object dies.
        let leftover = og.pages.range(offidxstart..offidxstart + size).count() as u64;
        if leftover > 0 {
            self.count_n(td, Counter::leaked, leftover);
        }
        og.split_moved = None;
        og.flags &= !SPLIT;
        self.trace(td, Ev::SplitDone, new.id, offidxstart, moved);
        drop(og);
        drop(ng);
        entry.object = new;
        entry.offset = 0;
        // The entry's reference on the original passes away.
        self.object_deallocate(td, orig)
    }

    /// Runs `f` on an object's state under its lock (tests, reports).
    pub fn peek_object<R>(
        &self,
        td: &Td,
        obj: &VmObject,
        f: impl FnOnce(&crate::object::ObjInner) -> R,
    ) -> Res<R> {
        let g = self.lock_obj(td, obj)?;
        Ok(f(&g))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::scenarios::d15293;
    use crate::testutil::*;

    #[test]
    fn split_moves_the_entrys_pages_then_its_swap_blocks() {
        let vm = vm(d15293::BASELINE, 64);
        let mut td = td();
        // E1 = [0,6), E2 = [6,16), both on object O.
        let p = image(&vm, &mut td, 16, &[6]);
        for i in [2, 3, 8] {
            assert_eq!(vm.evict(&mut td, p, 0x100 + i, false).unwrap(), 1);
        }
        let (o, _) = vm.entry_object(&td, p, 0x100).unwrap().unwrap();
        let child = vm.vmspace_fork(&mut td, p).unwrap().unwrap();
        assert_eq!(
            vm.counters.snapshot().splits,
            1,
            "only the clipped E1 is split"
        );
        let (n1, off) = vm.entry_object(&td, p, 0x100).unwrap().unwrap();
        assert_eq!(off, 0);
        assert_ne!(n1.id, o.id);
        let (pages, swap) = layout(&vm, &td, p, 0x100);
        assert_eq!(pages, [0, 1, 4, 5]);
        assert_eq!(swap, [2, 3]);
        let (pages, swap) = layout(&vm, &td, p, 0x106);
        assert!(pages.iter().all(|&i| (6..16).contains(&i)), "{pages:?}");
        assert_eq!(swap, [8]);
        // Both images share N1 and O copy-on-write.
        let (c1, _) = vm.entry_object(&td, child, 0x100).unwrap().unwrap();
        assert_eq!(c1.id, n1.id);
        assert_eq!(vm.peek_object(&td, &n1, |g| g.ref_count).unwrap(), 2);
        assert_eq!(vm.peek_object(&td, &o, |g| g.ref_count).unwrap(), 2);
        for img in [p, child] {
            for i in 0..16 {
                assert!(vm.load(&mut td, img, 0x100 + i).unwrap());
            }
        }
        vm.check_conservation().unwrap();
    }

    #[test]
    fn split_needs_more_than_one_reference() {
        let vm = vm(d15293::BASELINE, 64);
        let mut td = td();
        let p = image(&vm, &mut td, 8, &[]);
        vm.vmspace_fork(&mut td, p).unwrap().unwrap();
        assert_eq!(
            vm.counters.snapshot().splits,
            0,
            "an unclipped idle object is shared, not split"
        );
        vm.check_conservation().unwrap();
    }
}
