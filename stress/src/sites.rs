//! The switchable points of the model: every place a real patch changed,
//! as one flag each. A scenario's variant is a setting of these flags; the
//! model reads only this struct, never a scenario's variant list.
//!
//! All flags off is the unpatched FreeBSD each site was taken from. A site
//! is marked in the source where the model tests it (`D15293 site`, ...),
//! with the diff that introduced it.

use serde::{Deserialize, Serialize};

/// How `vm_object_split` treats an original page whose index the new object
/// may already hold (kib's first diff in review D15293, and its inversion).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SplitSkip {
    /// Rename every page (FreeBSD as it was).
    #[default]
    Off,
    /// Free the original page when the new object already holds its index.
    Held,
    /// The same check with the condition inverted.
    NotHeld,
}

/// One flag per switchable site. `Sites::default()` is the unpatched code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sites {
    /// `vm_object_split` waits for paging-in-progress to drain before it
    /// starts (alc's thought in D15293).
    pub split_pip_wait: bool,
    /// `vm_object_split`'s page loop: skip pages the new object holds.
    pub split_skip: SplitSkip,
    /// `vm_object_split` resumes at the busy page's pindex after sleeping,
    /// instead of at the start of the range (alc's diff in D15293).
    pub split_restart_at_busy: bool,
    /// `swap_pager_getpages` clips read-behind to the resident predecessor
    /// before dropping the object lock (alc's diff in D15293).
    pub getpages_clip_early: bool,
    /// `swap_pager_getpages` allocates every behind/ahead page before it
    /// takes a pbuf (the committed fix of D15293, r335171).
    pub getpages_alloc_before_pbuf: bool,
    /// `vm_fault` skips the map timestamp re-check after the pager (a
    /// deliberately broken variant).
    pub fault_skip_timestamp_recheck: bool,
    /// `swap_pager_swapoff_object` looks the object's swap metadata up
    /// again after every relock, instead of going on with the blocks it
    /// looked up before (r358024 site).
    pub swapoff_revalidate: bool,
    /// `swap_pager_swapoff_object` pages in through `swap_pager_getpages`
    /// with read-ahead (the pager looks the blocks up under the lock, pages
    /// busy), instead of grabbing a run of pages and reading the blocks it
    /// found before (r358024 site).
    pub swapoff_getpages: bool,
    /// `swap_pager_swapoff_object` dirties the pages it read in (and frees
    /// their blocks) at once, instead of on its next pass (D45668 site).
    pub swapoff_dirty_after_read: bool,
}

impl Sites {
    /// Every flag off: the unpatched code. Scenarios write their settings
    /// as `Sites { flag: true, ..Sites::OFF }`, so a new flag touches only
    /// this file.
    pub const OFF: Sites = Sites {
        split_pip_wait: false,
        split_skip: SplitSkip::Off,
        split_restart_at_busy: false,
        getpages_clip_early: false,
        getpages_alloc_before_pbuf: false,
        fault_skip_timestamp_recheck: false,
        swapoff_revalidate: false,
        swapoff_getpages: false,
        swapoff_dirty_after_read: false,
    };
}

/// The model events a scenario may count as "its race window opened"
/// (`Stats::window_hits`). The model reports every event; the scenario's
/// choice ([`crate::vm::VmConfig::window`]) decides which one counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Window {
    /// `vm_object_split` met a busy page (or, with `split_pip_wait`, had to
    /// wait for paging) while a read-behind swap-in of the same object was
    /// in flight (review D15293).
    #[default]
    SplitMetReadBehind,
    /// `vm_object_collapse` scanned a backing object while a fault was
    /// inside it (walking the chain or in getpages on it).
    CollapseMetFault,
    /// `swap_pager_swapoff_object` had the object unlocked (sleeping on a
    /// busy page, waiting for memory, or in the pager) while another thread
    /// changed that object's swap metadata (r358024).
    SwapoffMetaChanged,
}
