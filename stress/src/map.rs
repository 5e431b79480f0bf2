//! Address maps (`vm_map`): an image's entries `[start, end)` → (object,
//! offset) with `COW`/`NEEDS_COPY`, under a sleepable shared/exclusive lock
//! whose every exclusive acquisition bumps the map `timestamp` — the
//! generation number `vm_fault` re-checks after it dropped the lock.
//! Addresses are in pages (vpn).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;

use crate::object::VmObject;
use crate::platform::Platform;
use crate::sync::{RwLockReadGuard, RwLockWriteGuard, SxLock};
use crate::vm::{Res, Td, Vm, Wait};

/// `MAP_ENTRY_COW`.
pub const COW: u32 = 1 << 0;
/// `MAP_ENTRY_NEEDS_COPY`.
pub const NEEDS_COPY: u32 = 1 << 1;

/// One map entry.
#[derive(Clone)]
pub struct Entry {
    /// First vpn.
    pub start: u64,
    /// End vpn (exclusive).
    pub end: u64,
    /// The backing `vm_object`.
    pub object: Arc<VmObject>,
    /// Offset into the object, in pages.
    pub offset: u64,
    /// `eflags` (`COW`, `NEEDS_COPY`).
    pub eflags: u32,
}

impl Entry {
    /// The object pindex backing `vpn`.
    pub fn pindex(&self, vpn: u64) -> u64 {
        self.offset + (vpn - self.start)
    }
}

/// A map's state, protected by the map lock.
pub struct MapInner {
    /// Bumped by every exclusive lock (`vm_map_lock`).
    pub timestamp: u32,
    /// Entries by start vpn.
    pub entries: BTreeMap<u64, Entry>,
}

impl MapInner {
    /// The entry containing `vpn`.
    pub fn lookup_entry(&self, vpn: u64) -> Option<&Entry> {
        self.entries
            .range(..=vpn)
            .next_back()
            .map(|(_, e)| e)
            .filter(|e| vpn < e.end)
    }

    /// Mutable entry containing `vpn`.
    pub fn lookup_entry_mut(&mut self, vpn: u64) -> Option<&mut Entry> {
        self.entries
            .range_mut(..=vpn)
            .next_back()
            .map(|(_, e)| e)
            .filter(|e| vpn < e.end)
    }
}

/// A map (`struct vm_map`).
pub struct VmMap {
    pub(crate) lock: SxLock<MapInner>,
}

/// What `vm_map_lookup` found for a fault.
#[derive(Clone)]
pub struct Lookup {
    /// The object holding the page (`first_object`).
    pub object: Arc<VmObject>,
    /// The page index in it (`first_pindex`).
    pub pindex: u64,
    /// Entry bounds (vpn), for sizing read-behind/ahead.
    pub e_start: u64,
    /// End vpn of the entry (exclusive).
    pub e_end: u64,
    /// May the page be mapped writable?
    pub writable: bool,
}

impl VmMap {
    /// An empty map.
    pub fn new() -> Self {
        VmMap {
            lock: SxLock::new(MapInner {
                timestamp: 0,
                entries: BTreeMap::new(),
            }),
        }
    }
}

impl Default for VmMap {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Platform> Vm<P> {
    /// `vm_map_lock_read`.
    pub(crate) fn map_lock_read<'a>(
        &self,
        td: &Td,
        img: u32,
        map: &'a VmMap,
    ) -> Res<RwLockReadGuard<'a, MapInner>> {
        map.lock.read(self, td, Wait::MapRead(img))
    }

    /// `vm_map_lock`: exclusive, and bumps the timestamp.
    pub(crate) fn map_lock<'a>(
        &self,
        td: &Td,
        img: u32,
        map: &'a VmMap,
    ) -> Res<RwLockWriteGuard<'a, MapInner>> {
        let mut g = map.lock.write(self, td, Wait::MapWrite(img))?;
        g.timestamp = g.timestamp.wrapping_add(1);
        Ok(g)
    }
}

/// `vm_map_lookup_locked` without the ability to upgrade: `None` when there
/// is no entry, or when a write would need the entry copied first
/// (`KERN_FAILURE`: the caller retries the whole fault).
pub fn lookup_locked(m: &MapInner, vpn: u64, write: bool) -> Option<Lookup> {
    let e = m.lookup_entry(vpn)?;
    let needs_copy = e.eflags & NEEDS_COPY != 0;
    if write && needs_copy {
        return None;
    }
    Some(Lookup {
        object: e.object.clone(),
        pindex: e.pindex(vpn),
        e_start: e.start,
        e_end: e.end,
        writable: !needs_copy,
    })
}

/// `vm_map_clip_start`: splits the entry containing `at` so an entry starts
/// there; both halves share the object (one more reference for the caller to
/// take). Returns the object that gained a mapping, if a clip happened.
pub fn clip_at(m: &mut MapInner, at: u64) -> Option<Arc<VmObject>> {
    let e = m.lookup_entry(at)?.clone();
    if e.start == at {
        return None;
    }
    let mut left = e.clone();
    left.end = at;
    let mut right = e;
    right.offset += at - right.start;
    right.start = at;
    let obj = right.object.clone();
    m.entries.insert(left.start, left);
    m.entries.insert(right.start, right);
    Some(obj)
}
