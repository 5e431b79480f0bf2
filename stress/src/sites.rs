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

    // The collapse family (scenario `collapse`). All off: the collapse the
    // D15293 scenario runs (it waits for paging to drain and then merges).
    /// The collapse scan frees a page as FreeBSD does: asserting that no
    /// pmap maps it ("freeing mapped page", a `freed-mapped` failure), and
    /// a shadowed backing page together with its swap space. Off:
    /// the model's older collapse, which unmapped the page first and so hid
    /// that failure (kept for the D15293 scenario, whose figures it made).
    pub collapse_asserts_unmapped: bool,
    /// `vm_object_collapse` with paging in progress on either object runs
    /// `vm_object_qcollapse`: it frees the backing object's shadowed pages
    /// without waiting for anything (FreeBSD before D22908).
    pub collapse_quick: bool,
    /// The collapse scan sleeps on a busy page of the parent at the index
    /// it is about to decide on, and qcollapse skips that index
    /// (r291576, D4146, 2015).
    pub collapse_busy_parent_wait: bool,
    /// The collapse scan marks the backing object `OBJ_DEAD` when it starts
    /// (faults that reach it retry), not only when it is done.
    pub collapse_dead_at_start: bool,
    /// `vm_object_collapse` bypasses a backing object that the parent
    /// shadows entirely (`vm_object_scan_all_shadowed`).
    pub collapse_bypass: bool,
    /// D22908: collapse no longer waits for paging in progress (and no
    /// qcollapse): it marks the parent `OBJ_COLLAPSING` and runs while faults
    /// are in flight; a fault that would descend from a collapsing object
    /// waits for the collapse and retries; the backing object dies only
    /// after its paging drained.
    pub collapse_concurrent: bool,
    /// D22908: `vm_object_split` waits for a collapse of the object in
    /// progress, then marks it `OBJ_SPLIT` while it moves pages.
    pub split_waits_collapse: bool,
    /// D22908: `swap_pager_getpages` on an `OBJ_SPLIT` or `OBJ_DEAD` object
    /// reads no page behind and none ahead of the request.
    pub getpages_no_cluster_split_dead: bool,
    /// The fault of early 2020: meeting a busy page deeper in the chain, it
    /// releases (unbusies) its invalid placeholder page in the top object
    /// instead of freeing it, and sleeps (an invalid page stays behind).
    pub fault_busy_keeps_placeholder: bool,
    /// r357091 (D23331): collapse treats invalid pages as absent — the scan
    /// frees an invalid page of either object instead of letting it shadow,
    /// and the all-shadowed test refuses a backing object with one.
    pub collapse_checks_valid: bool,

    // The swapoff family (scenario `swapoff`).
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
        collapse_asserts_unmapped: false,
        collapse_quick: false,
        collapse_busy_parent_wait: false,
        collapse_dead_at_start: false,
        collapse_bypass: false,
        collapse_concurrent: false,
        split_waits_collapse: false,
        getpages_no_cluster_split_dead: false,
        fault_busy_keeps_placeholder: false,
        collapse_checks_valid: false,
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
