//! The collapse scenario's workload, after stress2's `misc/collapse.sh`: a
//! fork tree (up to `depth` generations, `width` children alive at once)
//! over a parent whose threads fault (read and write) across swapped and
//! resident pages, while a page daemon keeps memory tight. Children touch
//! pages and exit in any order, so backing objects keep collapsing into
//! their last shadow — and forks collapse the parent's objects — while the
//! parent's faults walk the same chains. All of it drawn from one seed.
//!
//! Roles, fault and page-daemon iterations are those of the D15293
//! workload (`d15293::workload`); the fork loop is this tree. Steered
//! (`super::steer`), the tree exits a child into the window and fault
//! threads touch pages being read in below the parent's top objects. Inheritance
//! is copy-on-write only: the model has no shared (`INHERIT_SHARE`) entries.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::platform::{Platform, Site};
use crate::scenarios::d15293::workload::{Parents, Workload};
use crate::variant::Variant;
use crate::vm::{Delay, Res, Td, Vm, VmConfig};

pub use crate::scenarios::d15293::workload::{Role, roles};

/// The workload's parameters.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Parent layout, fault mix, memory cap (the D15293 workload's).
    pub w: Workload,
    /// Children alive at once, at most.
    pub width: usize,
    /// Generations below the parent, at most.
    pub depth: u32,
    /// Chance per tree step to fork (else a child exits), per 65536.
    pub fork_per_64k: u32,
    /// Chance that a fork is of the parent rather than of a child.
    pub fork_parent_per_64k: u32,
    /// Steer toward the window ([`super::steer`]): when a child's exit
    /// would collapse an object below the parent's top, wait (bounded)
    /// for a fault of the parent to sleep on a busy page of it, then exit
    /// that child. Off: children exit at random.
    pub steer: bool,
}

/// What the tree keeps between steps.
pub struct State {
    parents: Parents,
    /// Live children: (image, generation).
    kids: spin::Mutex<Vec<(u32, u32)>>,
    /// Steered tree steps: a child exited into an armed window.
    pub steered: AtomicU64,
    /// Steered waits that timed out (the tree went on at random).
    pub unarmed: AtomicU64,
}

impl Tree {
    /// The workload for `seed`.
    pub fn for_seed(seed: u64) -> Self {
        let mut w = Workload::for_seed(seed);
        let mut td = Td::new(usize::MAX / 5, seed);
        // The parent lives for the whole run: its chains are what collapse.
        w.renew_per_64k = 0;
        w.child_loads = 2 + td.below(3) as u32;
        w.child_stores = 1 + td.below(3) as u32;
        Tree {
            w,
            width: 3,
            depth: 6,
            fork_per_64k: 36_000 + td.below(8_000) as u32,
            fork_parent_per_64k: 32_768,
            steer: false,
        }
    }

    /// The same workload, steered toward the window or not.
    pub fn steered(self, steer: bool) -> Self {
        Tree { steer, ..self }
    }

    /// The machine: the D15293 workload's, with image slots for the tree and
    /// delays that widen the fault's windows around the collapse.
    pub fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        let mut c = self.w.vm_config(variant, ncpus);
        c.image_slots = self.w.parents + self.width + 2;
        // After the pager (and after a copy-on-write), the fault relocks
        // the map: the window in which a collapse may meet its pages.
        for d in c.delays.iter_mut() {
            if d.site == Site::FaultRelock {
                *d = Delay {
                    site: Site::FaultRelock,
                    per_64k: 24_000,
                    max_ns: 40_000,
                };
            }
        }
        // A fault that woke from a busy page below its top object lingers
        // before it retries: the time its top-object page (freed, or left
        // behind invalid by the early-2020 fault) meets a collapse scan.
        // Every variant runs the same delay.
        c.delays.push(Delay {
            site: Site::FaultBusyRetry,
            per_64k: 65_536,
            max_ns: 8_000_000,
        });
        c
    }

    /// The parent image(s).
    pub fn setup<P: Platform>(&self, vm: &Vm<P>, td: &mut Td) -> Res<State> {
        Ok(State {
            parents: vm.setup(td, &self.w)?,
            kids: spin::Mutex::new(Vec::new()),
            steered: AtomicU64::new(0),
            unarmed: AtomicU64::new(0),
        })
    }

    /// Runs `role` until the run finishes or the budget is spent.
    pub fn run_role<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        st: &State,
        role: Role,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()> {
        td.delays = !role.leads();
        let mut i = 0u64;
        while budget.is_none_or(|b| i < b) && !vm.finishing() {
            vm.check()?;
            match role {
                Role::Fault => self.fault_step(vm, td, st)?,
                Role::Fork => self.tree_op(vm, td, st)?,
                Role::Pageout => vm.pageout_op(td, &self.w)?,
                Role::ForkPageout => {
                    if i.is_multiple_of(2) {
                        self.tree_op(vm, td, st)?
                    } else {
                        vm.pageout_op(td, &self.w)?
                    }
                }
                Role::All => match i % 6 {
                    0 => self.tree_op(vm, td, st)?,
                    1 => vm.pageout_op(td, &self.w)?,
                    _ => vm.fault_op(td, &self.w, &st.parents)?,
                },
            }
            vm.beat(td);
            after(vm);
            i += 1;
        }
        Ok(())
    }

    /// One fault-thread access. Steered, a fault thread touches a page of
    /// the parent that another fault is reading in below its top object
    /// when there is one (it then sleeps on that busy page), else a random
    /// one.
    fn fault_step<P: Platform>(&self, vm: &Vm<P>, td: &mut Td, st: &State) -> Res<()> {
        if self.steer {
            let parent = st.parents.ids()[0];
            if let Some(vpn) = vm.paging_in_below(parent) {
                vm.load(td, parent, vpn)?;
                return Ok(());
            }
        }
        vm.fault_op(td, &self.w, &st.parents)
    }

    /// One step of the tree: fork (the parent or a child) and let the new
    /// child touch pages, or let a child exit.
    fn tree_op<P: Platform>(&self, vm: &Vm<P>, td: &mut Td, st: &State) -> Res<()> {
        let mut kids = core::mem::take(&mut *st.kids.lock());
        let r = self.tree_step(vm, td, st, &mut kids);
        *st.kids.lock() = kids;
        r
    }

    fn tree_step<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        st: &State,
        kids: &mut Vec<(u32, u32)>,
    ) -> Res<()> {
        if self.steer && vm.cfg.ncpus > 1 && !kids.is_empty() {
            // Exit into the window: when a child holds the other reference
            // of an object below the parent's top, wait for a fault of the
            // parent to sleep on a busy page of it. Alone on one CPU there
            // is no fault to wait for.
            let parent = st.parents.ids()[0];
            let ids: Vec<u32> = kids.iter().map(|&(k, _)| k).collect();
            if vm.collapse_exit_candidate(parent, &ids, false).is_some() {
                match vm.await_collapse_window(parent, &ids, super::steer::WAIT_NS) {
                    Some(k) => {
                        st.steered.fetch_add(1, Ordering::Relaxed);
                        kids.retain(|&(c, _)| c != k);
                        return vm.vmspace_exit(td, k);
                    }
                    None => {
                        st.unarmed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let fork = kids.is_empty() || (kids.len() < self.width && td.chance(self.fork_per_64k));
        if !fork {
            let (k, _) = kids.swap_remove(td.below(kids.len() as u64) as usize);
            return vm.vmspace_exit(td, k);
        }
        let grown: Vec<(u32, u32)> = kids
            .iter()
            .copied()
            .filter(|&(_, g)| g < self.depth)
            .collect();
        let (src, generation) = if grown.is_empty() || td.chance(self.fork_parent_per_64k) {
            (st.parents.ids()[0], 0)
        } else {
            grown[td.below(grown.len() as u64) as usize]
        };
        let Some(child) = vm.vmspace_fork(td, src)? else {
            return Ok(());
        };
        for _ in 0..self.w.child_loads {
            let vpn = self.w.random_vpn(td);
            vm.load(td, child, vpn)?;
        }
        for _ in 0..self.w.child_stores {
            let vpn = self.w.random_vpn(td);
            vm.store(td, child, vpn)?;
        }
        kids.push((child, generation + 1));
        if self.w.fork_gap_ns > 0 {
            let ns = td.below(self.w.fork_gap_ns);
            vm.p.delay(ns);
        }
        Ok(())
    }
}
