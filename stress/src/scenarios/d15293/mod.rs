//! Scenario `d15293`: fork splits an object while a swap-in with read-behind
//! is in flight (FreeBSD review D15293, 2018; fixed by r335171).
//!
//! The race: a fault busies page `p` of object `O` and, in getpages, drops
//! `O`'s lock to take a pbuf; fork splits `O`, moves the pages below `p` and
//! sleeps on busy `p`; the fault relocks `O`, clips read-behind against pages
//! that are now gone and re-creates them from stale swap; split restarts
//! from the start of the range and finds `O` repopulated. The variants are
//! the diffs argued in the review; `docs/scenarios/d15293.md` has the
//! interleaving and the measurements.

pub mod steer;
pub mod workload;

use alloc::vec::Vec;

use super::{D15293, Expect, Guard, Scenario};
use crate::failure::FailureKind;
use crate::platform::Platform;
use crate::sites::{Sites, SplitSkip, Window};
use crate::variant::{Variant, VariantDef};
use crate::vm::{Res, Td, Vm, VmConfig};
use workload::{Parents, Role, Workload, roles};

/// FreeBSD around r334544, before the fix.
pub const BASELINE: Variant = Variant::new(D15293, 0);
/// kib's first diff: split frees an orig page whose index the new object holds.
pub const SPLIT_SKIP: Variant = Variant::new(D15293, 1);
/// The same check with the condition inverted.
pub const SPLIT_SKIP_INVERTED: Variant = Variant::new(D15293, 2);
/// alc's diff: split restarts at the busy page's pindex.
pub const SPLIT_RESTART: Variant = Variant::new(D15293, 3);
/// alc's diff: getpages clips read-behind before unlocking.
pub const SWAP_CLIP: Variant = Variant::new(D15293, 4);
/// The committed fix (r335171).
pub const SWAP_PREALLOC: Variant = Variant::new(D15293, 5);
/// alc's thought: split waits for paging-in-progress first.
pub const SPLIT_PIPWAIT: Variant = Variant::new(D15293, 6);
/// vm_fault without the map timestamp re-check.
pub const NO_TIMESTAMP_RECHECK: Variant = Variant::new(D15293, 7);

const OFF: Sites = Sites::OFF;

/// The scenario.
pub static SCENARIO: Scenario = Scenario {
    name: "d15293",
    title: "fork splits an object while a swap-in with read-behind is in flight",
    references: &[
        "review D15293 (2018, kib, alc, avg, markj)",
        "fix r335171 (2018-06-14, kib with alc, tested by pho)",
    ],
    variants: &[
        VariantDef {
            name: "baseline",
            summary: "FreeBSD before the fix (r334544)",
            sites: OFF,
            touches: &[],
            reference: "FreeBSD r334544",
        },
        VariantDef {
            name: "split-skip",
            summary: "kib's first diff: split frees an orig page whose index the new object holds",
            sites: Sites {
                split_skip: SplitSkip::Held,
                ..OFF
            },
            touches: &["vm_object_split: page loop skips pages the new object holds"],
            reference: "D15293, kib's first diff",
        },
        VariantDef {
            name: "split-skip-inverted",
            summary: "the same check with the condition inverted (avg's question)",
            sites: Sites {
                split_skip: SplitSkip::NotHeld,
                ..OFF
            },
            touches: &["vm_object_split: page loop skips pages the new object lacks"],
            reference: "D15293, the revision avg questioned",
        },
        VariantDef {
            name: "split-restart",
            summary: "alc's diff: split restarts find_least at the busy page's pindex",
            sites: Sites {
                split_restart_at_busy: true,
                ..OFF
            },
            touches: &["vm_object_split: restart point after sleeping on a busy page"],
            reference: "D15293, alc's diff",
        },
        VariantDef {
            name: "swap-clip",
            summary: "alc's diff: getpages clips rbehind to the resident predecessor before unlocking",
            sites: Sites {
                getpages_clip_early: true,
                ..OFF
            },
            touches: &["swap_pager_getpages: clip read-behind before dropping the lock"],
            reference: "D15293, alc's diff",
        },
        VariantDef {
            name: "swap-prealloc",
            summary: "the committed fix (r335171): allocate behind/ahead pages before getpbuf",
            sites: Sites {
                getpages_alloc_before_pbuf: true,
                ..OFF
            },
            touches: &["swap_pager_getpages: allocate behind/ahead pages, then take the pbuf"],
            reference: "r335171",
        },
        VariantDef {
            name: "split-pipwait",
            summary: "alc's thought: split waits for paging-in-progress to drain first",
            sites: Sites {
                split_pip_wait: true,
                ..OFF
            },
            touches: &["vm_object_split: wait for paging-in-progress before the page loop"],
            reference: "D15293, alc's comment",
        },
        VariantDef {
            name: "no-timestamp-recheck",
            summary: "vm_fault skips the map timestamp re-check after the pager",
            sites: Sites {
                fault_skip_timestamp_recheck: true,
                ..OFF
            },
            touches: &["vm_fault: map timestamp re-check after the pager"],
            reference: "deliberately broken (shows the stale-data oracle)",
        },
    ],
    default_variant: "baseline",
    bench_variant: "swap-prealloc",
    window: Window::SplitMetReadBehind,
    window_doc: "vm_object_split met a busy page (or, waiting for paging, a swap-in) while a \
                 read-behind swap-in of the same object was in flight",
    trace_window: crate::timeline::D15293_WINDOW,
    costs: &[
        crate::stats::Counter::wasted,
        crate::stats::Counter::discarded,
        crate::stats::Counter::leaked,
    ],
    oracles: &[
        FailureKind::Repopulated,
        FailureKind::DuplicatePage,
        FailureKind::StaleData,
        FailureKind::Conservation,
        FailureKind::Hang,
    ],
    guards: &[
        Guard {
            variant: "baseline",
            expect: Expect::Caught(&[FailureKind::Repopulated, FailureKind::DuplicatePage]),
        },
        Guard {
            variant: "swap-prealloc",
            expect: Expect::CleanWithWindow,
        },
    ],
    // With 2 vCPUs (one fault CPU) `compare --until-confident` called
    // swap-clip clean at 100× in 8,760 hits (2026-12-02), while on 4 it is
    // caught in every run: its clipped gap is refilled by a second fault.
    verdict_cpus: 4,
};

/// The workload of this scenario for one run.
pub type Race = super::Run<Workload>;

/// The race's workload for `seed`, scaled by `knobs`.
pub fn race(seed: u64, knobs: super::Knobs) -> Race {
    super::Run::new(Workload::for_seed(seed).steered(knobs.steer))
}

impl super::RoleKind for Role {
    fn name(self) -> &'static str {
        Role::name(self)
    }
    fn leads(self) -> bool {
        Role::leads(self)
    }
}

impl super::RaceWorkload for Workload {
    type Role = Role;
    type State = Parents;

    fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        Workload::vm_config(self, variant, ncpus)
    }

    fn roles(&self, ncpus: usize) -> Vec<Role> {
        roles(ncpus)
    }

    fn setup<P: Platform>(&self, vm: &Vm<P>, td: &mut Td) -> Res<Parents> {
        vm.setup(td, self)
    }

    fn run_role<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        parents: &Parents,
        role: Role,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()> {
        vm.run_role_with(td, self, parents, role, budget, |vm| after(vm))
    }
}
