//! The oracles that are not woven into the model's own paths: conservation
//! of frames, swap blocks and references (checked at quiescent points), and
//! liveness (a watchdog over per-CPU heartbeats).
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

use crate::failure::FailureKind;
use crate::object::VmObject;
use crate::platform::Platform;
use crate::proto::CpuWait;
use crate::vm::{Vm, Wait};

/// A conservation summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub frames: usize,
    pub free_frames: usize,
    pub resident: usize,
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

/// The liveness watchdog: declares a hang when a CPU that has not finished
/// made no progress (no heartbeat) for `stall_ns`.
pub struct Watchdog {
    stall_ns: u64,
    last: Vec<(u64, u64)>,
}

impl Watchdog {
    pub fn new(ncpus: usize, stall_ns: u64, now_ns: u64) -> Self {
        Watchdog {
            stall_ns,
            last: alloc::vec![(0, now_ns); ncpus],
        }
    }

    /// Looks at the heartbeats; on a hang records a `Hang` failure on the VM
    /// (what every CPU waits on) and returns the waits.
    pub fn observe<P: Platform>(
        &mut self,
        vm: &Vm<P>,
        done: &[bool],
        now_ns: u64,
    ) -> Option<Vec<CpuWait>> {
        let beats = vm.beats();
        let mut stuck = false;
        for (cpu, b) in beats.iter().enumerate() {
            let Some(l) = self.last.get_mut(cpu) else {
                continue;
            };
            if *b != l.0 {
                *l = (*b, now_ns);
            } else if !done.get(cpu).copied().unwrap_or(false) && now_ns - l.1 > self.stall_ns {
                stuck = true;
            }
        }
        if !stuck || vm.stopped() {
            return None;
        }
        let waits: Vec<CpuWait> = vm
            .waits()
            .into_iter()
            .enumerate()
            .map(|(cpu, w)| CpuWait {
                cpu: cpu as u32,
                wait: if done.get(cpu).copied().unwrap_or(false) && w == Wait::Running {
                    "finished".into()
                } else {
                    format!("{w}")
                },
                stalled_ms: now_ns.saturating_sub(self.last.get(cpu).map_or(now_ns, |l| l.1))
                    / 1_000_000,
            })
            .collect();
        let detail = waits
            .iter()
            .map(|w| format!("cpu{}: {} ({} ms)", w.cpu, w.wait, w.stalled_ms))
            .collect::<Vec<_>>()
            .join("; ");
        vm.fail_from(
            0,
            FailureKind::Hang,
            format!("no progress for {} ms: {detail}", self.stall_ns / 1_000_000),
        );
        Some(waits)
    }
}
