//! Process life cycle on the map level: creating an image, `vmspace_fork`
//! (`vm_map_copy_entry` with collapse and split), `vmspace_exit`, and the
//! map edits the workload makes (clipping an entry as `mprotect` would, and
//! replacing an entry as `munmap` + `mmap` would).

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::map::{self, COW, Entry, NEEDS_COPY};
use crate::object::{NOSPLIT, ONEMAPPING, ObjKind};
use crate::platform::{Platform, Site};
use crate::stats::Counter;
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm};

/// One anonymous region of a new image: `pages` long at `start` (vpn),
/// clipped into several entries at the given offsets (pages from `start`).
#[derive(Clone, Debug)]
pub struct Region {
    /// First vpn.
    pub start: u64,
    /// Length in pages.
    pub pages: u64,
    /// Clip offsets (pages from `start`).
    pub clips: Vec<u64>,
}

impl<P: Platform> Vm<P> {
    /// Creates an image with the given anonymous regions; `None` when every
    /// image slot is taken.
    pub fn create_image(&self, td: &mut Td, regions: &[Region]) -> Res<Option<u32>> {
        let Some(id) = self.images.alloc() else {
            return Ok(None);
        };
        let img = self.images.get(id);
        let mut m = self.map_lock(td, id, &img.map)?;
        for r in regions {
            let object = self.object_allocate(ObjKind::Default, r.pages);
            m.entries.insert(
                r.start,
                Entry {
                    start: r.start,
                    end: r.start + r.pages,
                    object,
                    offset: 0,
                    eflags: 0,
                },
            );
            for &c in &r.clips {
                if c > 0
                    && c < r.pages
                    && let Some(obj) = map::clip_at(&mut m, r.start + c)
                {
                    self.lock_obj(td, &obj)?.ref_count += 1;
                }
            }
        }
        Ok(Some(id))
    }

    /// `vmspace_fork`: a child image sharing every anonymous entry
    /// copy-on-write. `None` when no image slot is free.
    pub fn vmspace_fork(&self, td: &mut Td, parent: u32) -> Res<Option<u32>> {
        let Some(child) = self.images.alloc() else {
            return Ok(None);
        };
        self.trace(td, Ev::ForkStart, 0, 0, parent as u64);
        let pimg = self.images.get(parent);
        let cimg = self.images.get(child);
        let mut pm = self.map_lock(td, parent, &pimg.map)?;
        self.site(td, Site::ForkLocked)?;
        let mut cm = self.map_lock(td, child, &cimg.map)?;
        let starts: Vec<u64> = pm.entries.keys().copied().collect();
        for s in starts {
            let Some(mut e) = pm.entries.get(&s).cloned() else {
                continue;
            };
            self.map_copy_entry(td, parent, child, &mut e)?;
            e.eflags |= COW | NEEDS_COPY;
            pm.entries.insert(s, e.clone());
            cm.entries.insert(s, e);
        }
        drop(cm);
        drop(pm);
        self.site(td, Site::ForkDone)?;
        self.count(td, Counter::forks);
        self.trace(td, Ev::ForkDone, 0, 0, child as u64);
        Ok(Some(child))
    }

    /// `vm_map_copy_entry` for an anonymous entry: write-protect the parent
    /// (and hand the child the parent's expectations for the range), collapse
    /// and maybe split the object, and take the child's reference.
    fn map_copy_entry(&self, td: &mut Td, parent: u32, child: u32, e: &mut Entry) -> Res<()> {
        {
            let pimg = self.images.get(parent);
            let cimg = self.images.get(child);
            let mut ppm = self.lock_pmap(td, pimg)?;
            if e.eflags & NEEDS_COPY == 0 {
                // pmap_protect(src_map->pmap, start, end, prot & ~WRITE).
                for (_, pte) in ppm.ptes.range_mut(e.start..e.end) {
                    pte.writable = false;
                }
            }
            let snapshot: Vec<_> = ppm
                .expect
                .range(e.start..e.end)
                .map(|(k, v)| (*k, *v))
                .collect();
            drop(ppm);
            let mut cpm = self.lock_pmap(td, cimg)?;
            cpm.expect.extend(snapshot);
        }
        let obj = e.object.clone();
        let mut g = self.lock_obj(td, &obj)?;
        if g.anonymous() {
            g = self.object_collapse(td, &obj, g)?;
            if g.flags & (NOSPLIT | ONEMAPPING) == ONEMAPPING {
                drop(g);
                self.object_split(td, e)?;
                let now = e.object.clone();
                let mut g = self.lock_obj(td, &now)?;
                g.ref_count += 1;
                g.flags &= !ONEMAPPING;
                return Ok(());
            }
        }
        g.ref_count += 1;
        g.flags &= !ONEMAPPING;
        Ok(())
    }

    /// `vmspace_exit`: removes every entry and translation, then drops the
    /// objects' references (after unlocking the map, as FreeBSD defers them).
    pub fn vmspace_exit(&self, td: &mut Td, id: u32) -> Res<()> {
        let img = self.images.get(id);
        let mut m = self.map_lock(td, id, &img.map)?;
        let entries: Vec<Entry> = core::mem::take(&mut m.entries).into_values().collect();
        {
            let mut pm = self.lock_pmap(td, img)?;
            self.pmap_remove_range(id, &mut pm, 0, u64::MAX);
            pm.expect.clear();
        }
        drop(m);
        for e in entries {
            self.object_deallocate(td, e.object)?;
        }
        self.images.release(id);
        self.count(td, Counter::exits);
        self.trace(td, Ev::Exit, 0, 0, id as u64);
        Ok(())
    }

    /// `vm_map_clip_start` at `vpn` (as `mprotect` of part of an entry does):
    /// both halves share the object. Returns true if an entry was clipped.
    pub fn map_clip(&self, td: &mut Td, id: u32, vpn: u64) -> Res<bool> {
        let img = self.images.get(id);
        let mut m = self.map_lock(td, id, &img.map)?;
        match map::clip_at(&mut m, vpn) {
            Some(obj) => {
                self.lock_obj(td, &obj)?.ref_count += 1;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Replaces the entry containing `vpn` with a fresh anonymous mapping of
    /// the same range (`munmap` + `mmap`): its pages read as zeros again.
    pub fn map_remap(&self, td: &mut Td, id: u32, vpn: u64) -> Res<bool> {
        let img = self.images.get(id);
        let mut m = self.map_lock(td, id, &img.map)?;
        let Some(old) = m.lookup_entry(vpn).cloned() else {
            return Ok(false);
        };
        m.entries.remove(&old.start);
        {
            let mut pm = self.lock_pmap(td, img)?;
            self.pmap_remove_range(id, &mut pm, old.start, old.end);
            let vpns: Vec<u64> = pm
                .expect
                .range(old.start..old.end)
                .map(|(k, _)| *k)
                .collect();
            for v in vpns {
                pm.expect.remove(&v);
            }
        }
        let object = self.object_allocate(ObjKind::Default, old.end - old.start);
        m.entries.insert(
            old.start,
            Entry {
                start: old.start,
                end: old.end,
                object,
                offset: 0,
                eflags: 0,
            },
        );
        drop(m);
        self.object_deallocate(td, old.object)?;
        Ok(true)
    }

    /// The object and pindex `vpn` of image `id` is mapped through (tests).
    pub fn entry_object(
        &self,
        td: &Td,
        id: u32,
        vpn: u64,
    ) -> Res<Option<(Arc<crate::object::VmObject>, u64)>> {
        let img = self.images.get(id);
        let m = self.map_lock_read(td, id, &img.map)?;
        Ok(m.lookup_entry(vpn)
            .map(|e| (e.object.clone(), e.pindex(vpn))))
    }
}
