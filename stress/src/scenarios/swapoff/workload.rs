//! The swapoff workload: the processes of D15293's workload (threads that
//! fault, a fork loop, a page daemon, all drawn from one seed) on a swap
//! disk cut into device slots, plus one CPU that removes a device
//! (`swapoff`) and adds it back (`swapon`), device after device, in a loop.
//!
//! The fork loop does not fork while a device is being removed (a gate both
//! take): a fork splits objects, and split's own race with anything that
//! allocates pages in the original object while it sleeps (review D15293's
//! family, the collapse scenario's OBJ_SPLIT) would otherwise be measured
//! here too. Faults, the page daemon and children that already exist go on.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::platform::{Platform, Site};
use crate::scenarios::d15293::workload::{Parents, Role, Workload};
use crate::variant::Variant;
use crate::vm::{Delay, Res, Td, Vm, VmConfig, Wait};

/// What one CPU does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roles {
    /// A role of D15293's workload.
    Base(Role),
    /// Removes and re-adds swap devices.
    Swapoff,
    /// A role of D15293's workload with a swapoff cycle now and then (1–2 CPUs).
    WithSwapoff(Role),
}

impl Roles {
    /// Roles for `ncpus` CPUs: the last CPU runs swapoff from 3 CPUs up.
    pub fn for_cpus(ncpus: usize) -> Vec<Roles> {
        match ncpus {
            0 | 1 => vec![Roles::WithSwapoff(Role::All)],
            2 => vec![
                Roles::WithSwapoff(Role::ForkPageout),
                Roles::Base(Role::Fault),
            ],
            3 => vec![
                Roles::Base(Role::ForkPageout),
                Roles::Base(Role::Fault),
                Roles::Swapoff,
            ],
            n => {
                let mut r = vec![Roles::Base(Role::Fork), Roles::Base(Role::Pageout)];
                r.resize(n - 1, Roles::Base(Role::Fault));
                r.push(Roles::Swapoff);
                r
            }
        }
    }

    /// Its name in diagnostics.
    pub const fn name(self) -> &'static str {
        match self {
            Roles::Base(r) => r.name(),
            Roles::Swapoff => "swapoff",
            Roles::WithSwapoff(Role::All) => "all+swapoff",
            Roles::WithSwapoff(_) => "fork+pageout+swapoff",
        }
    }

    /// Whether it runs the fork loop (the run's main loop).
    pub const fn leads(self) -> bool {
        match self {
            Roles::Base(r) | Roles::WithSwapoff(r) => r.leads(),
            Roles::Swapoff => false,
        }
    }
}

/// The workload's parameters.
#[derive(Debug)]
pub struct SwapoffWorkload {
    /// D15293's processes.
    pub base: Workload,
    /// Swap devices the disk is cut into.
    pub devices: usize,
    /// The swapoff loop pauses up to this long between two removals.
    pub swapoff_gap_ns: u64,
    /// A CPU sharing its role with swapoff runs a cycle every this many
    /// iterations.
    pub swapoff_every: u64,
    /// Held by a fork and by a swapoff cycle: they do not overlap.
    gate: spin::Mutex<()>,
    /// A swapoff cycle waits for the gate: forks let it go first.
    swapoff_waits: AtomicBool,
}

impl SwapoffWorkload {
    /// The default stress workload for `seed`.
    pub fn for_seed(seed: u64) -> Self {
        let mut td = Td::new(usize::MAX / 5, seed);
        let mut base = Workload::for_seed(seed);
        // Writers on every fault CPU: write faults free swap copies, which
        // is what changes the metadata swapoff looked up.
        let writes = 16_000 + td.below(8_000) as u32;
        base.store_per_64k = [writes, writes];
        SwapoffWorkload {
            base,
            devices: 2,
            swapoff_gap_ns: 4_000_000,
            swapoff_every: 8,
            gate: spin::Mutex::new(()),
            swapoff_waits: AtomicBool::new(false),
        }
    }

    /// A small workload for controlled-scheduler exploration.
    pub fn small(seed: u64) -> Self {
        SwapoffWorkload {
            base: Workload::small(seed),
            devices: 2,
            swapoff_gap_ns: 0,
            swapoff_every: 4,
            gate: spin::Mutex::new(()),
            swapoff_waits: AtomicBool::new(false),
        }
    }

    /// The machine for a stress run of `variant` on `ncpus` CPUs: D15293's,
    /// with a delay where swapoff is about to relock an object.
    pub fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        let mut c = self.base.vm_config(variant, ncpus);
        c.delays.push(Delay {
            site: Site::SwapoffUnlocked,
            per_64k: 65_536,
            max_ns: 4_000_000,
        });
        c
    }

    /// Cuts swap into devices, then builds D15293's parent images.
    pub fn setup<P: Platform>(&self, vm: &Vm<P>, td: &mut Td) -> Res<Parents> {
        vm.set_swap_devices(self.devices);
        vm.setup(td, &self.base)
    }

    /// One swapoff cycle: remove device `i % devices`, add it back, pause.
    pub fn swapoff_op<P: Platform>(&self, vm: &Vm<P>, td: &mut Td, i: u64) -> Res<()> {
        let dev = (i % vm.swap_devices() as u64) as usize;
        {
            self.swapoff_waits.store(true, Ordering::Release);
            let g = vm.wait_for(td, Wait::Internal, || self.gate.try_lock());
            self.swapoff_waits.store(false, Ordering::Release);
            let _g = g?;
            vm.swapoff(td, dev)?;
            vm.swapon(dev);
        }
        if self.swapoff_gap_ns > 0 {
            let ns = td.below(self.swapoff_gap_ns);
            vm.p.delay(ns);
        }
        Ok(())
    }

    /// One fork-loop iteration (D15293's), never during a swapoff cycle:
    /// while one runs (or waits to), the fork loop faults instead.
    pub fn fork_op<P: Platform>(&self, vm: &Vm<P>, td: &mut Td, parents: &Parents) -> Res<()> {
        let gate = if self.swapoff_waits.load(Ordering::Acquire) {
            None
        } else {
            self.gate.try_lock()
        };
        match gate {
            Some(_g) => vm.fork_op(td, &self.base, parents),
            None => vm.fault_op(td, &self.base, parents),
        }
    }

    /// Runs `role` until the run stops or the budget is spent, calling
    /// `after` after every iteration.
    pub fn run_role<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        parents: &Parents,
        role: Roles,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()> {
        let inner = match role {
            Roles::Base(Role::Fault | Role::Pageout) => {
                let Roles::Base(r) = role else { return Ok(()) };
                return vm.run_role_with(td, &self.base, parents, r, budget, |vm| after(vm));
            }
            Roles::Base(r) => Some(r),
            Roles::Swapoff => None,
            Roles::WithSwapoff(r) => Some(r),
        };
        // Delays widen the windows of the threads that fault and of
        // swapoff; the fork loop runs undelayed so that it forks often.
        td.delays = !matches!(role, Roles::Base(_));
        let with_swapoff = matches!(role, Roles::WithSwapoff(_));
        let w = &self.base;
        let mut i = 0u64;
        while budget.is_none_or(|b| i < b) && !vm.finishing() {
            vm.check()?;
            match inner {
                None => self.swapoff_op(vm, td, i)?,
                Some(_) if with_swapoff && i % self.swapoff_every == self.swapoff_every - 1 => {
                    self.swapoff_op(vm, td, i / self.swapoff_every)?
                }
                Some(Role::Fork) => self.fork_op(vm, td, parents)?,
                Some(Role::ForkPageout) if i.is_multiple_of(2) => self.fork_op(vm, td, parents)?,
                Some(Role::ForkPageout) => vm.pageout_op(td, w)?,
                Some(_) => match i % 6 {
                    0 => self.fork_op(vm, td, parents)?,
                    1 => vm.pageout_op(td, w)?,
                    _ => vm.fault_op(td, w, parents)?,
                },
            }
            vm.beat(td);
            after(vm);
            i += 1;
        }
        Ok(())
    }
}
