//! The oracle that is not woven into the model's own paths: conservation
//! of frames, swap blocks and references (checked at quiescent points).
//! Liveness is the run driver's watchdog (`crate::run::Watchdog`).
//!
//! The woven ones: duplicate/repopulated page (`page_insert` in split and
//! `page_alloc`), stale data (`image::check_page` on every load and store),
//! freed-while-mapped (`page_free`), window coverage and wasted reads
//! (`split`, `getpages`).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use crate::object::VmObject;
use crate::platform::Platform;
use crate::vm::Vm;

/// A conservation summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Frames in total.
    pub frames: usize,
    /// Frames on the free list.
    pub free_frames: usize,
    /// Pages resident in objects.
    pub resident: usize,
    /// Objects alive.
    pub objects: usize,
    /// Swap blocks allocated (as many as the objects reference).
    pub swap_used: u64,
}

impl<P: Platform> Vm<P> {
    /// Every object reachable from a live image, through backing chains.
    fn reachable_objects(&self) -> Vec<Arc<VmObject>> {
        let mut seen: BTreeMap<u32, Arc<VmObject>> = BTreeMap::new();
        let mut todo: Vec<Arc<VmObject>> = Vec::new();
        for id in self.images.live() {
            let m = self.images.get(id).map.lock.read_now();
            todo.extend(m.entries.values().map(|e| e.object.clone()));
        }
        while let Some(o) = todo.pop() {
            if seen.contains_key(&o.id) {
                continue;
            }
            if let Some(b) = o.lock.lock().backing.clone() {
                todo.push(b);
            }
            seen.insert(o.id, o);
        }
        seen.into_values().collect()
    }

    /// Checks conservation with no model thread running: every frame is free
    /// or owned by exactly the object page that names it; every allocated swap
    /// block is referenced by exactly one object; every object's reference
    /// count equals its map entries plus its shadows; nothing is busy and no
    /// paging is in progress. Returns the census or what does not add up.
    pub fn check_conservation(&self) -> Result<Census, String> {
        let objects = self.reachable_objects();
        let mut refs: BTreeMap<u32, u32> = BTreeMap::new();
        for id in self.images.live() {
            let m = self.images.get(id).map.lock.read_now();
            for e in m.entries.values() {
                *refs.entry(e.object.id).or_default() += 1;
            }
        }
        let mut resident = 0;
        let mut owned = alloc::vec![false; self.pages.len()];
        let mut blocks: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
        for o in &objects {
            let g = o.lock.lock();
            if let Some(b) = &g.backing {
                *refs.entry(b.id).or_default() += 1;
            }
            if g.pip != 0 {
                return Err(format!(
                    "object {} has paging in progress {} at rest",
                    o.id, g.pip
                ));
            }
            if g.dead() {
                return Err(format!("dead object {} is still reachable", o.id));
            }
            for (&p, pg) in &g.pages {
                resident += 1;
                let f = pg.frame as usize;
                if owned[f] {
                    return Err(format!(
                        "frame {f} belongs to two pages (object {} pindex {p})",
                        o.id
                    ));
                }
                owned[f] = true;
                if self.pages.busied(pg.frame) {
                    return Err(format!("object {} pindex {p} is busy at rest", o.id));
                }
                let ow = self.pages.frame(pg.frame).owner.lock().clone();
                if ow.as_ref().map(|w| (w.obj_id, w.pindex)) != Some((o.id, p)) {
                    return Err(format!(
                        "frame {f}'s owner is not object {} pindex {p}",
                        o.id
                    ));
                }
            }
            for (&p, &b) in &g.swblk {
                if let Some((o2, p2)) = blocks.insert(b, (o.id, p)) {
                    return Err(format!(
                        "swap block {b} held by object {} pindex {p} and object {o2} pindex {p2}",
                        o.id
                    ));
                }
                if !self.swap.allocated(b) {
                    return Err(format!(
                        "object {} pindex {p} holds free swap block {b}",
                        o.id
                    ));
                }
            }
        }
        for o in &objects {
            let rc = o.lock.lock().ref_count;
            let want = refs.get(&o.id).copied().unwrap_or(0);
            if rc != want {
                return Err(format!(
                    "object {} has ref_count {rc} but {want} map entries and shadows refer to it",
                    o.id
                ));
            }
        }
        let free = self.pages.free_count();
        if free + resident != self.pages.len() {
            return Err(format!(
                "frames: {free} free + {resident} resident != {} total ({} lost)",
                self.pages.len(),
                self.pages.len() as i64 - (free + resident) as i64
            ));
        }
        let used = self.swap.used();
        if used != blocks.len() as u64 {
            return Err(format!(
                "swap: {used} blocks allocated but {} referenced by objects",
                blocks.len()
            ));
        }
        let live = self.live_objects.load(Ordering::Relaxed) as usize;
        if live != objects.len() {
            return Err(format!(
                "{live} objects alive but {} reachable from images",
                objects.len()
            ));
        }
        Ok(Census {
            frames: self.pages.len(),
            free_frames: free,
            resident,
            objects: objects.len(),
            swap_used: used,
        })
    }
}
