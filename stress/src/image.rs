//! Process images: a map, a software pmap, and what the image expects to
//! read at every page — the stale-data oracle.
//!
//! Every store writes `(vpn, lineage, version)` and a pattern derived from
//! them into the page; the image records that stamp as expected. Every load
//! (and every store, before overwriting) checks the page against the
//! expected stamp. A child starts with its parent's expectations, taken at
//! the moment fork write-protects the parent. Loads and stores go through the
//! pmap only: a missing or read-only translation is a fault.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::failure::FailureKind;
use crate::map::VmMap;
use crate::page::{FrameId, PageData};
use crate::platform::Platform;
use crate::stats::Counter;
use crate::sync::{Lock, MutexGuard};
use crate::trace::Ev;
use crate::vm::{Res, Td, Vm, Wait};

/// Who wrote a page last, as an image expects it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// The incarnation that wrote the page.
    pub lineage: u32,
    /// Bumped by every store to the page.
    pub version: u32,
}

/// One translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte {
    /// The frame mapped.
    pub frame: FrameId,
    /// Mapped writable (else copy-on-write or read-only).
    pub writable: bool,
}

/// A software pmap plus the image's expectations.
pub struct Pmap {
    /// Translations by vpn.
    pub ptes: BTreeMap<u64, Pte>,
    /// vpn -> stamp; absent means the page must read as zeros.
    pub expect: BTreeMap<u64, Stamp>,
    /// This incarnation's lineage (stamped by its stores).
    pub lineage: u32,
}

/// One image slot.
pub struct Image {
    /// Slot index.
    pub id: u32,
    /// The slot's `vm_map`.
    pub map: VmMap,
    /// The slot's pmap and expectations.
    pub pmap: Lock<Pmap>,
    pub(crate) live: AtomicBool,
}

/// Every image slot.
pub struct Images {
    slots: Vec<Image>,
    next_lineage: AtomicU32,
}

impl Images {
    /// `n` free slots.
    pub fn new(n: usize) -> Self {
        Images {
            slots: (0..n as u32)
                .map(|id| Image {
                    id,
                    map: VmMap::new(),
                    pmap: Lock::new(Pmap {
                        ptes: BTreeMap::new(),
                        expect: BTreeMap::new(),
                        lineage: 0,
                    }),
                    live: AtomicBool::new(false),
                })
                .collect(),
            next_lineage: AtomicU32::new(1),
        }
    }

    /// Slot `id`.
    pub fn get(&self, id: u32) -> &Image {
        &self.slots[id as usize]
    }

    /// Claims a free slot with a fresh lineage.
    pub(crate) fn alloc(&self) -> Option<u32> {
        for s in &self.slots {
            if s.live
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                let lineage = self.next_lineage.fetch_add(1, Ordering::Relaxed);
                let mut pm = s.pmap.lock_now();
                pm.lineage = lineage;
                pm.expect.clear();
                return Some(s.id);
            }
        }
        None
    }

    pub(crate) fn release(&self, id: u32) {
        self.slots[id as usize].live.store(false, Ordering::Release);
    }

    /// Live images.
    pub fn live(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter(|s| s.live.load(Ordering::Acquire))
            .map(|s| s.id)
            .collect()
    }
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn word(d: &PageData, i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[i * 8..i * 8 + 8]);
    u64::from_le_bytes(b)
}

/// Fills a page with the contents a store of `stamp` at `vpn` writes.
pub fn fill_page(d: &mut PageData, vpn: u64, s: Stamp) {
    let seed = stamp_seed(vpn, s);
    d[0..8].copy_from_slice(&vpn.to_le_bytes());
    d[8..12].copy_from_slice(&s.lineage.to_le_bytes());
    d[12..16].copy_from_slice(&s.version.to_le_bytes());
    for (i, w) in d.chunks_exact_mut(8).enumerate().skip(2) {
        w.copy_from_slice(&pattern(seed, i).to_le_bytes());
    }
}

/// The seed of the pattern of stamp `s` at `vpn`.
fn stamp_seed(vpn: u64, s: Stamp) -> u64 {
    mix(vpn ^ ((s.lineage as u64) << 32 | s.version as u64).rotate_left(17))
}

/// Word `i` of the pattern a stamp fills a page with (cheap: one multiply).
fn pattern(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Words checked beyond the header.
const SAMPLES: [usize; 6] = [2, 3, 101, 257, 384, 511];

/// What a page holds, if it looks like a store of some stamp at `vpn`
/// (`Ok(None)` = all zeros); `Err` describes a page that is neither.
pub fn read_stamp(d: &PageData, vpn: u64) -> Result<Option<Stamp>, alloc::string::String> {
    let v = word(d, 0);
    let lineage = u32::from_le_bytes([d[8], d[9], d[10], d[11]]);
    let version = u32::from_le_bytes([d[12], d[13], d[14], d[15]]);
    if v == 0 && lineage == 0 && version == 0 {
        return match SAMPLES.iter().find(|&&i| word(d, i) != 0) {
            None => Ok(None),
            Some(i) => Err(format!("zero header but word {i} is {:#x}", word(d, *i))),
        };
    }
    if v != vpn {
        return Err(format!(
            "page of vpn {v} (lineage {lineage} version {version}) found at vpn {vpn}"
        ));
    }
    let s = Stamp { lineage, version };
    let seed = stamp_seed(vpn, s);
    for &i in &SAMPLES {
        if word(d, i) != pattern(seed, i) {
            return Err(format!(
                "torn page: lineage {lineage} version {version}, word {i} wrong"
            ));
        }
    }
    Ok(Some(s))
}

fn show(s: Option<Stamp>) -> alloc::string::String {
    match s {
        None => "zeros".into(),
        Some(s) => format!("lineage {} version {}", s.lineage, s.version),
    }
}

impl<P: Platform> Vm<P> {
    pub(crate) fn lock_pmap<'a>(&self, td: &Td, img: &'a Image) -> Res<MutexGuard<'a, Pmap>> {
        img.pmap.lock(self, td, Wait::Pmap(img.id))
    }

    /// Checks the page mapped at `vpn` against the expectation.
    fn check_page(
        &self,
        td: &Td,
        img: &Image,
        pm: &Pmap,
        vpn: u64,
        f: FrameId,
    ) -> Res<Option<Stamp>> {
        let seen = read_stamp(&self.pages.frame(f).data.lock(), vpn);
        let want = pm.expect.get(&vpn).copied();
        match seen {
            Ok(s) if s == want => Ok(s),
            Ok(s) => Err(self.fail(
                td,
                FailureKind::StaleData,
                format!(
                    "image {} (lineage {}) vpn {vpn} frame {f}: expected {}, found {}",
                    img.id,
                    pm.lineage,
                    show(want),
                    show(s)
                ),
            )),
            Err(why) => Err(self.fail(
                td,
                FailureKind::StaleData,
                format!(
                    "image {} (lineage {}) vpn {vpn} frame {f}: expected {}, found garbage: {why}",
                    img.id,
                    pm.lineage,
                    show(want)
                ),
            )),
        }
    }

    /// Does image `img` have a translation for `vpn` now? (A peek for the
    /// workload's choice of pages; false when the pmap is busy.)
    pub fn mapped(&self, img_id: u32, vpn: u64) -> bool {
        self.images
            .get(img_id)
            .pmap
            .try_lock()
            .is_some_and(|pm| pm.ptes.contains_key(&vpn))
    }

    /// A load by image `img` at `vpn`, checked against its expectation.
    /// Returns false when nothing maps `vpn`.
    pub fn load(&self, td: &mut Td, img_id: u32, vpn: u64) -> Res<bool> {
        let img = self.images.get(img_id);
        loop {
            {
                let pm = self.lock_pmap(td, img)?;
                if let Some(pte) = pm.ptes.get(&vpn).copied() {
                    let s = self.check_page(td, img, &pm, vpn, pte.frame)?;
                    self.count(td, Counter::loads);
                    self.trace(td, Ev::Load, 0, vpn, s.map_or(0, |s| s.version as u64));
                    return Ok(true);
                }
            }
            if !self.vm_fault(td, img, vpn, false)? {
                return Ok(false);
            }
        }
    }

    /// A store by image `img` at `vpn`: checks the old contents, then writes
    /// the next version. Returns false when nothing maps `vpn`.
    pub fn store(&self, td: &mut Td, img_id: u32, vpn: u64) -> Res<bool> {
        let img = self.images.get(img_id);
        loop {
            {
                let mut pm = self.lock_pmap(td, img)?;
                if let Some(pte) = pm.ptes.get(&vpn).copied().filter(|p| p.writable) {
                    let old = self.check_page(td, img, &pm, vpn, pte.frame)?;
                    let s = Stamp {
                        lineage: pm.lineage,
                        version: old.map_or(0, |s| s.version) + 1,
                    };
                    fill_page(&mut self.pages.frame(pte.frame).data.lock(), vpn, s);
                    pm.expect.insert(vpn, s);
                    self.count(td, Counter::stores);
                    self.trace(td, Ev::Store, 0, vpn, s.version as u64);
                    return Ok(true);
                }
            }
            if !self.vm_fault(td, img, vpn, true)? {
                return Ok(false);
            }
        }
    }

    /// `pmap_enter`.
    pub(crate) fn pmap_enter(
        &self,
        td: &Td,
        img_id: u32,
        vpn: u64,
        f: FrameId,
        writable: bool,
    ) -> Res<()> {
        let img = self.images.get(img_id);
        let mut pm = self.lock_pmap(td, img)?;
        if let Some(old) = pm.ptes.insert(vpn, Pte { frame: f, writable }) {
            if old.frame != f {
                self.pv_remove(old.frame, img_id, vpn);
            } else {
                return Ok(());
            }
        }
        self.pages.frame(f).pv.lock().push((img_id, vpn));
        Ok(())
    }

    /// Drops `(img_id, vpn)` from the reverse mappings of frame `f`.
    fn pv_remove(&self, f: FrameId, img_id: u32, vpn: u64) {
        self.pages
            .frame(f)
            .pv
            .lock()
            .retain(|&e| e != (img_id, vpn));
    }

    /// `pmap_remove_all`: removes every mapping of a frame.
    pub(crate) fn pmap_remove_all(&self, td: &Td, f: FrameId) -> Res<()> {
        loop {
            let Some((img_id, vpn)) = self.pages.frame(f).pv.lock().first().copied() else {
                return Ok(());
            };
            let img = self.images.get(img_id);
            let mut pm = self.lock_pmap(td, img)?;
            if pm.ptes.get(&vpn).is_some_and(|p| p.frame == f) {
                pm.ptes.remove(&vpn);
            }
            self.pv_remove(f, img_id, vpn);
        }
    }

    /// Removes every translation of `[start, end)` from a locked pmap.
    pub(crate) fn pmap_remove_range(&self, img_id: u32, pm: &mut Pmap, start: u64, end: u64) {
        let vpns: Vec<u64> = pm.ptes.range(start..end).map(|(v, _)| *v).collect();
        for vpn in vpns {
            if let Some(p) = pm.ptes.remove(&vpn) {
                self.pv_remove(p.frame, img_id, vpn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::PAGE_SIZE;

    #[test]
    fn stamps_roundtrip_and_detect_damage() {
        let mut d = [0u8; PAGE_SIZE];
        assert_eq!(read_stamp(&d, 5), Ok(None));
        let s = Stamp {
            lineage: 3,
            version: 9,
        };
        fill_page(&mut d, 5, s);
        assert_eq!(read_stamp(&d, 5), Ok(Some(s)));
        assert!(read_stamp(&d, 6).is_err(), "wrong vpn");
        d[257 * 8] ^= 1;
        assert!(read_stamp(&d, 5).unwrap_err().contains("torn"));
        let mut z = [0u8; PAGE_SIZE];
        z[101 * 8] = 1;
        assert!(read_stamp(&z, 5).is_err());
    }
}
