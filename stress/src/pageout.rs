//! The page daemon, reduced to what the race needs: pick resident pages
//! round-robin (a clock hand over the frame table), launder dirty ones to
//! swap in clusters of contiguous pages (so read-behind finds contiguous
//! swap runs later), and free clean ones. Like FreeBSD's scan it only
//! try-locks objects and skips busy pages.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::object::{ObjGuard, VmObject};
use crate::page::FrameId;
use crate::platform::Platform;
use crate::vm::{Res, Td, Vm};

/// Largest cluster laundered in one write (`vm_pageout_cluster`).
pub const CLUSTER: u64 = 16;

/// The clock hand.
pub struct Hand(AtomicU32);

impl Hand {
    /// The hand at frame 0.
    pub const fn new() -> Self {
        Hand(AtomicU32::new(0))
    }
}

impl Default for Hand {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> Vm<P> {
    /// Scans up to a quarter of the frames, reclaiming until `want` frames
    /// were freed. Returns how many were freed.
    pub fn pageout_pass(&self, td: &mut Td, want: usize) -> Res<usize> {
        let n = self.pages.len() as u32;
        let mut freed = 0;
        for _ in 0..(n / 4).max(1) {
            if freed >= want {
                break;
            }
            let f = self.hand.0.fetch_add(1, Ordering::Relaxed) % n;
            freed += self.pageout_one(td, f)?;
            self.check()?;
        }
        Ok(freed)
    }

    /// Tries to reclaim the page in frame `f` (and its dirty neighbours).
    fn pageout_one(&self, td: &mut Td, f: FrameId) -> Res<usize> {
        let Some(owner) = self.pages.frame(f).owner.lock().clone() else {
            return Ok(0);
        };
        let Some(obj) = owner.obj.upgrade() else {
            return Ok(0);
        };
        let Some(g) = obj.lock.try_lock_arc() else {
            return Ok(0);
        };
        let p = owner.pindex;
        match g.lookup(p) {
            Some(pg)
                if pg.frame == f
                    && pg.valid
                    && !self.pages.busied(f)
                    && g.anonymous()
                    && !g.dead() => {}
            _ => return Ok(0),
        }
        self.launder(td, &obj, g, p, true)
    }

    /// Unmaps the page at `p`; writes it (with its dirty, idle, contiguous
    /// neighbours) to swap if dirty; frees every page of the cluster that is
    /// clean, idle and unmapped afterwards.
    fn launder(
        &self,
        td: &mut Td,
        obj: &Arc<VmObject>,
        mut g: ObjGuard,
        p: u64,
        cluster_ok: bool,
    ) -> Res<usize> {
        let idle = |g: &ObjGuard, q: u64| {
            g.lookup(q)
                .filter(|pg| pg.valid && !pg.swapinprog && !self.pages.busied(pg.frame))
        };
        let Some(pg) = idle(&g, p) else { return Ok(0) };
        let mut cluster: Vec<(u64, FrameId)> = alloc::vec![(p, pg.frame)];
        if pg.dirty && cluster_ok {
            let mut lo = p;
            while lo > 0 && (p - lo + 1) < CLUSTER / 2 {
                match idle(&g, lo - 1).filter(|q| q.dirty) {
                    Some(q) => {
                        lo -= 1;
                        cluster.insert(0, (lo, q.frame));
                    }
                    None => break,
                }
            }
            let mut hi = p;
            while (cluster.len() as u64) < CLUSTER {
                match idle(&g, hi + 1).filter(|q| q.dirty) {
                    Some(q) => {
                        hi += 1;
                        cluster.push((hi, q.frame));
                    }
                    None => break,
                }
            }
        }
        for (_, fr) in &cluster {
            self.pages.xbusy(*fr);
        }
        for (_, fr) in &cluster {
            self.pmap_remove_all(td, *fr)?;
        }
        if pg.dirty {
            let frames: Vec<FrameId> = cluster.iter().map(|c| c.1).collect();
            let (g2, _ok) = self.putpages(td, obj, g, cluster[0].0, &frames)?;
            g = g2;
        } else {
            for (_, fr) in &cluster {
                self.pages.xunbusy(*fr);
            }
        }
        let mut freed = 0;
        for (q, fr) in cluster {
            let Some(pg) = g.lookup(q) else { continue };
            if pg.frame != fr || pg.dirty || self.pages.busied(fr) || self.pages.mapped(fr) {
                continue;
            }
            self.page_free(td, obj.id, &mut g, q)?;
            freed += 1;
        }
        Ok(freed)
    }

    /// Pages out the page image `img` maps at `vpn` in its top object
    /// (writing it to swap first if dirty; with `cluster`, together with its
    /// dirty neighbours). Returns how many pages were freed. For scripted
    /// tests that need an exact memory state.
    pub fn evict(&self, td: &mut Td, img: u32, vpn: u64, cluster: bool) -> Res<usize> {
        let Some((obj, pindex)) = self.entry_object(td, img, vpn)? else {
            return Ok(0);
        };
        let g = self.lock_obj(td, &obj)?;
        self.launder(td, &obj, g, pindex, cluster)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::scenarios::d15293;
    use crate::testutil::*;

    #[test]
    fn pageout_and_swap_in_round_trip() {
        let vm = vm(d15293::BASELINE, 64);
        let mut td = td();
        let p = image(&vm, &mut td, 24, &[]);
        for i in 0..24 {
            assert!(vm.store(&mut td, p, 0x100 + i).unwrap(), "version 2");
        }
        let mut freed = 0;
        for i in 0..24 {
            freed += vm.evict(&mut td, p, 0x100 + i, true).unwrap();
        }
        assert_eq!(freed, 24);
        let c = vm.check_conservation().unwrap();
        assert_eq!((c.resident, c.swap_used), (0, 24));
        assert!(vm.counters.snapshot().swapouts <= 3, "clusters of up to 16");
        for i in (0..24).rev() {
            assert!(
                vm.load(&mut td, p, 0x100 + i).unwrap(),
                "reads back version 2"
            );
        }
        let s = vm.counters.snapshot();
        assert_eq!(s.swapin_pages, 24);
        assert!(s.swapins < 24, "read-behind/ahead batched the reads");
        vm.teardown(&mut td).unwrap();
        let c = vm.check_conservation().unwrap();
        assert_eq!((c.free_frames, c.swap_used, c.objects), (64, 0, 0));
    }
}
