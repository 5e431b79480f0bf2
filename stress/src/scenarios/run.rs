//! The one [`Race`] every scenario uses: a scenario writes its workload
//! ([`RaceWorkload`]: the machine it needs, its roles, its setup and the
//! loop of one role) and [`Run`] holds it with the state its setup built
//! and answers the driver.

use alloc::vec::Vec;

use super::{Race, Role};
use crate::platform::Platform;
use crate::variant::Variant;
use crate::vm::{Res, Td, Vm, VmConfig};

/// A workload's role: what one CPU does.
pub trait RoleKind: Copy {
    /// Its name in diagnostics ("fork", "fault", ...).
    fn name(self) -> &'static str;
    /// Whether its loop leads the run (see [`Role::leads`]).
    fn leads(self) -> bool;
}

/// A scenario's workload, drawn from a seed.
pub trait RaceWorkload: Send + Sync {
    /// What one CPU does.
    type Role: RoleKind;
    /// What [`RaceWorkload::setup`] builds (the initial processes).
    type State: Send + Sync;
    /// The machine a run of `variant` on `ncpus` CPUs needs.
    fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig;
    /// The role of every CPU.
    fn roles(&self, ncpus: usize) -> Vec<Self::Role>;
    /// Builds the initial processes (CPU 0, before the others start).
    fn setup<P: Platform>(&self, vm: &Vm<P>, td: &mut Td) -> Res<Self::State>;
    /// Runs `role` until the run finishes or `budget` iterations are done,
    /// calling `after` after every iteration.
    fn run_role<P: Platform>(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        state: &Self::State,
        role: Self::Role,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()>;
}

/// A workload for one run, with its state once set up.
pub struct Run<W: RaceWorkload> {
    w: W,
    state: Option<W::State>,
}

impl<W: RaceWorkload> Run<W> {
    /// `w`, not set up yet.
    pub fn new(w: W) -> Self {
        Run { w, state: None }
    }
}

impl<P: Platform, W: RaceWorkload> Race<P> for Run<W> {
    fn config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        self.w.vm_config(variant, ncpus)
    }

    fn roles(&self, ncpus: usize) -> Vec<Role> {
        self.w
            .roles(ncpus)
            .into_iter()
            .map(|r| Role {
                name: r.name(),
                leads: r.leads(),
            })
            .collect()
    }

    fn setup(&mut self, vm: &Vm<P>, td: &mut Td) -> Res<()> {
        self.state = Some(self.w.setup(vm, td)?);
        Ok(())
    }

    fn run_cpu(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        cpu: usize,
        ncpus: usize,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let role = self.w.roles(ncpus)[cpu];
        self.w.run_role(vm, td, state, role, budget, after)
    }
}
