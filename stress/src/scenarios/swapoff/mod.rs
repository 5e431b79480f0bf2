//! Scenario `swapoff`: swapoff(2) pages in a swap block it looked up before
//! it dropped the object lock (FreeBSD r358024, review D23664, 2020).
//!
//! The race: `swap_pager_swapoff_object` finds a run of blocks on the
//! device being removed and grabs pages for it; grabbing sleeps on a busy
//! page with the object lock dropped. Meanwhile another thread changes the
//! object's swap metadata — a write fault dirties a page and frees its swap
//! copy, the page daemon writes it to a new block and frees the page. When
//! swapoff resumes it reads the blocks it found before: a block that was
//! freed (or reused), the old contents over newer ones. r358024 re-validates
//! the metadata after every relock and pages in through getpages with
//! read-ahead. `docs/scenarios/swapoff.md` has the interleaving and the
//! measurements.

pub mod workload;

use crate::scenarios::d15293::workload::Parents;
use alloc::vec::Vec;

use super::{Expect, Guard, SWAPOFF, Scenario};
use crate::failure::FailureKind;
use crate::platform::Platform;
use crate::sites::{Sites, Window};
use crate::variant::{Variant, VariantDef};
use crate::vm::{Res, Td, Vm, VmConfig};
use workload::{Roles, SwapoffWorkload};

/// FreeBSD of late 2019: swapoff grabs runs and reads the blocks it found.
pub const PRE_R358024: Variant = Variant::new(SWAPOFF, 0);
/// The fix (r358024): re-validate after relocking, page in through getpages.
pub const R358024: Variant = Variant::new(SWAPOFF, 1);
/// r358024 without its re-validation after relocking.
pub const R358024_NO_REVALIDATE: Variant = Variant::new(SWAPOFF, 2);
/// r358024 plus D45668: dirty the pages read in at once.
pub const D45668: Variant = Variant::new(SWAPOFF, 3);

/// The code every variant shares: FreeBSD after r335171 (the D15293 fix is
/// in the pager since 2018), swapoff as it was before r358024.
const BASE: Sites = Sites {
    getpages_alloc_before_pbuf: true,
    ..Sites::OFF
};

/// The scenario.
pub static SCENARIO: Scenario = Scenario {
    name: "swapoff",
    title: "swapoff pages in a swap block it looked up before dropping the object lock",
    references: &[
        "r358024 (2020-02-17, markj): Fix object locking races in swapoff(2) (review D23664)",
        "D23663 (an earlier revision, abandoned)",
        "D45668 (2024): swapoff dirties the pages it reads in at once",
    ],
    variants: &[
        VariantDef {
            name: "pre-r358024",
            summary: "FreeBSD before r358024: grab a run of pages, read the blocks found before",
            sites: BASE,
            touches: &[],
            reference: "FreeBSD head before r358024 (swp_pager_force_pagein of 2019)",
        },
        VariantDef {
            name: "r358024",
            summary: "the fix: page in through getpages with read-ahead, re-validate after relocking",
            sites: Sites {
                swapoff_getpages: true,
                swapoff_revalidate: true,
                ..BASE
            },
            touches: &[
                "swap_pager_swapoff_object: page in through swap_pager_getpages with read-ahead",
                "swap_pager_swapoff_object: restart the swap cluster after every relock",
            ],
            reference: "r358024 (D23664)",
        },
        VariantDef {
            name: "r358024-no-revalidate",
            summary: "r358024 without the restart after relocking (goes on with the cluster it found)",
            sites: Sites {
                swapoff_getpages: true,
                ..BASE
            },
            touches: &[
                "swap_pager_swapoff_object: page in through swap_pager_getpages with read-ahead",
            ],
            reference: "r358024 with its re-validation removed (which half matters)",
        },
        VariantDef {
            name: "d45668",
            summary: "r358024 plus D45668: dirty the pages read in at once, not on the next pass",
            sites: Sites {
                swapoff_getpages: true,
                swapoff_revalidate: true,
                swapoff_dirty_after_read: true,
                ..BASE
            },
            touches: &[
                "swap_pager_swapoff_object: page in through swap_pager_getpages with read-ahead",
                "swap_pager_swapoff_object: restart the swap cluster after every relock",
                "swap_pager_swapoff_object: dirty and unswap the pages just read",
            ],
            reference: "D45668 (2024)",
        },
    ],
    default_variant: "pre-r358024",
    bench_variant: "r358024",
    window: Window::SwapoffMetaChanged,
    window_doc: "swap_pager_swapoff_object had the object unlocked (sleeping on a busy page, \
                 waiting for memory, in the pager) while another thread changed that object's \
                 swap metadata",
    trace_window: crate::timeline::SWAPOFF_WINDOW,
    costs: &[
        crate::stats::Counter::swapoffs,
        crate::stats::Counter::swapoff_blocks,
        crate::stats::Counter::swapoff_pageins,
    ],
    oracles: &[
        FailureKind::SwapUseAfterFree,
        FailureKind::StaleData,
        FailureKind::Conservation,
        FailureKind::Hang,
    ],
    guards: &[
        Guard {
            variant: "pre-r358024",
            expect: Expect::Caught(&[FailureKind::SwapUseAfterFree, FailureKind::StaleData]),
        },
        Guard {
            variant: "r358024",
            expect: Expect::CleanWithWindow,
        },
    ],
    // Its roles (fork loop, page daemon, faults, swapoff) need 4 vCPUs.
    verdict_cpus: 4,
};

/// The workload of this scenario for one run.
pub type Race = super::Run<SwapoffWorkload>;

/// The workload for `seed`. It has no steering yet: `knobs.steer` is
/// accepted and changes nothing.
pub fn race(seed: u64, _knobs: super::Knobs) -> Race {
    super::Run::new(SwapoffWorkload::for_seed(seed))
}

impl super::RoleKind for Roles {
    fn name(self) -> &'static str {
        Roles::name(self)
    }
    fn leads(self) -> bool {
        Roles::leads(self)
    }
}

impl super::RaceWorkload for SwapoffWorkload {
    type Role = Roles;
    type State = Parents;

    fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        SwapoffWorkload::vm_config(self, variant, ncpus)
    }

    fn roles(&self, ncpus: usize) -> Vec<Roles> {
        Roles::for_cpus(ncpus)
    }

    fn setup<P: Platform>(&self, vm: &Vm<P>, td: &mut Td) -> Res<Parents> {
        SwapoffWorkload::setup(self, vm, td)
    }

    fn run_role<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        parents: &Parents,
        role: Roles,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()> {
        SwapoffWorkload::run_role(self, vm, td, parents, role, budget, after)
    }
}
