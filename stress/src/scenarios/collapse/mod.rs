//! Scenario `collapse`: `vm_object_collapse` racing faults that walk the
//! same shadow chain (FreeBSD review D22908, 2020, and its neighbour
//! r357091).
//!
//! Forks build shadow chains; when a child exits, a backing object is left
//! with one shadow and is collapsed into it (full collapse) or skipped
//! (bypass), while the parent's faults walk the chain, swap in and copy on
//! write. Before D22908 a collapse waited for paging to drain (with paging
//! in progress only `vm_object_qcollapse` ran, skipping busy and invalid
//! parent pages); D22908 removed qcollapse and lets the real scan run with
//! faults in flight (`OBJ_COLLAPSING`), waiting for the parent's busy page.
//! The race the model catches is r357091's: a fault that met a busy page
//! below its top object left its invalid page there (the early-2020
//! fault); the scan took that page for the parent's data and freed the
//! backing page with its swap space — a lost page, read as zeros by the
//! retry. r357091 frees invalid parent pages instead. The interleavings and
//! measurements are in `docs/scenarios/collapse.md`.

pub mod steer;
pub mod workload;

use alloc::vec::Vec;

use super::{COLLAPSE, Expect, Guard, Scenario};
use crate::failure::FailureKind;
use crate::platform::Platform;
use crate::sites::{Sites, Window};
use crate::variant::{Variant, VariantDef};
use crate::vm::{Res, Td, Vm, VmConfig};
use workload::Tree;

/// FreeBSD before D22908 (late 2019).
pub const PRE_D22908: Variant = Variant::new(COLLAPSE, 0);
/// The committed D22908.
pub const D22908: Variant = Variant::new(COLLAPSE, 1);
/// D22908 without its getpages change.
pub const D22908_NO_CLIP: Variant = Variant::new(COLLAPSE, 2);
/// D22908 with the early-2020 fault that leaves an invalid page behind.
pub const R357091_BEFORE: Variant = Variant::new(COLLAPSE, 3);
/// The same with r357091's fix.
pub const R357091: Variant = Variant::new(COLLAPSE, 4);

/// FreeBSD of late 2019: r335171 (D15293's fix), r291576 (collapse waits
/// on a busy parent page), the real scan (OBJ_DEAD at its start, the
/// bypass, the "freeing mapped page" assertion) and qcollapse.
const PRE: Sites = Sites {
    getpages_alloc_before_pbuf: true,
    collapse_asserts_unmapped: true,
    collapse_quick: true,
    collapse_busy_parent_wait: true,
    collapse_dead_at_start: true,
    collapse_bypass: true,
    ..Sites::OFF
};

/// D22908 on top of [`PRE`].
const D22908_SITES: Sites = Sites {
    collapse_quick: false,
    collapse_concurrent: true,
    split_waits_collapse: true,
    getpages_no_cluster_split_dead: true,
    ..PRE
};

/// The scenario.
pub static SCENARIO: Scenario = Scenario {
    name: "collapse",
    title: "vm_object_collapse racing faults that walk the same shadow chain",
    references: &[
        "review D22908, commit 98087a066f71 (2020, jeff, reviewed by kib and markj)",
        "r357091, D23331 (2020, kib): collapse vs a retrying fault",
        "r291576, D4146 (2015): collapse waits on a busy parent page",
        "stress2 misc/collapse.sh",
    ],
    variants: &[
        VariantDef {
            name: "pre-d22908",
            summary: "FreeBSD before D22908: collapse with paging in progress runs qcollapse",
            sites: PRE,
            touches: &[],
            reference: "FreeBSD head, late 2019 (with r335171 and r291576)",
        },
        VariantDef {
            name: "d22908",
            summary: "the committed D22908: OBJ_COLLAPSING, no qcollapse, split waits, no clustering under OBJ_SPLIT|OBJ_DEAD",
            sites: D22908_SITES,
            touches: &[
                "vm_object_collapse: no qcollapse; runs with faults in flight under OBJ_COLLAPSING",
                "vm_object_deallocate: no paging wait before collapsing",
                "vm_fault: waits for a collapse before descending the chain",
                "vm_object_split: waits for a collapse, sets OBJ_SPLIT",
                "swap_pager_getpages: no read-behind/ahead under OBJ_SPLIT|OBJ_DEAD",
            ],
            reference: "D22908 / 98087a066f71",
        },
        VariantDef {
            name: "d22908-no-clip",
            summary: "D22908 without its swap_pager_getpages change (clustering under OBJ_SPLIT|OBJ_DEAD)",
            sites: Sites {
                getpages_no_cluster_split_dead: false,
                ..D22908_SITES
            },
            touches: &["swap_pager_getpages: read-behind/ahead also under OBJ_SPLIT|OBJ_DEAD"],
            reference: "D22908 minus its swap_pager.c hunk",
        },
        VariantDef {
            name: "r357091-before",
            summary: "D22908 with the early-2020 fault that leaves its invalid page behind when it retries",
            sites: Sites {
                fault_busy_keeps_placeholder: true,
                ..D22908_SITES
            },
            touches: &[
                "vm_fault: on a busy page below, releases (not frees) its invalid top-object page",
            ],
            reference: "r357091's commit message (D23331): the race it fixed",
        },
        VariantDef {
            name: "r357091",
            summary: "r357091: collapse treats invalid pages as absent (and refuses to bypass them)",
            sites: Sites {
                fault_busy_keeps_placeholder: true,
                collapse_checks_valid: true,
                ..D22908_SITES
            },
            touches: &[
                "vm_object_collapse_scan: frees invalid pages of either object",
                "vm_object_scan_all_shadowed: refuses a backing object with an invalid page",
            ],
            reference: "r357091 / D23331",
        },
    ],
    default_variant: "pre-d22908",
    bench_variant: "d22908",
    window: Window::CollapseMetFault,
    window_doc: "vm_object_collapse began on a backing object (or qcollapse ran) while a fault \
                 was inside the parent or the backing object (paging in progress)",
    trace_window: crate::timeline::COLLAPSE_WINDOW,
    costs: &[
        crate::stats::Counter::placeholders_left,
        crate::stats::Counter::collapse_waits,
        crate::stats::Counter::collapses,
    ],
    oracles: &[
        FailureKind::FreedMapped,
        FailureKind::StaleData,
        FailureKind::DuplicatePage,
        FailureKind::Repopulated,
        FailureKind::Conservation,
        FailureKind::Hang,
    ],
    // One failing and one clean variant (docs/scenarios/collapse.md): the
    // invalid page a retrying fault leaves behind shadows the backing page
    // the collapse then frees with its swap — a lost page.
    guards: &[
        Guard {
            variant: "r357091-before",
            expect: Expect::Caught(&[FailureKind::StaleData, FailureKind::FreedMapped]),
        },
        Guard {
            variant: "d22908",
            expect: Expect::CleanWithWindow,
        },
    ],
    // Its roles and guards were measured on 4 vCPUs only.
    verdict_cpus: 4,
};

/// The workload of this scenario for one run.
pub type Race = super::Run<Tree>;

/// The workload for `seed`, steered when `knobs.steer` (see [`steer`]).
pub fn race(seed: u64, knobs: super::Knobs) -> Race {
    super::Run::new(Tree::for_seed(seed).steered(knobs.steer))
}

impl super::RaceWorkload for Tree {
    type Role = workload::Role;
    type State = workload::State;

    fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        Tree::vm_config(self, variant, ncpus)
    }

    fn roles(&self, ncpus: usize) -> Vec<workload::Role> {
        workload::roles(ncpus)
    }

    fn setup<P: Platform>(&self, vm: &Vm<P>, td: &mut Td) -> Res<workload::State> {
        Tree::setup(self, vm, td)
    }

    fn run_role<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        state: &workload::State,
        role: workload::Role,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()> {
        Tree::run_role(self, vm, td, state, role, budget, after)
    }
}
