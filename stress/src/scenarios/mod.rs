//! The races forkswap reproduces, one module each, and the list of them.
//!
//! A scenario owns its name and references, its variants (each a setting of
//! [`crate::sites::Sites`]), the model event that counts as its race window,
//! the race window its failure traces shade, the oracles that apply, the
//! boot tests that guard it, and its workload
//! ([`Race`]: roles and the loop each CPU runs). The run driver
//! ([`crate::run`]) owns everything else: set-up, deadline, progress,
//! watchdog, and the end of the run.
//!
//! To add a scenario: a module beside `d15293`, one line in [`ALL`] and one
//! arm in [`race`].

pub mod collapse;
pub mod d15293;
mod poll;
mod run;
pub mod swapoff;

pub use poll::POLL_NS;
pub use run::{RaceWorkload, RoleKind, Run};

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::failure::FailureKind;
use crate::platform::Platform;
use crate::sites::Window;
use crate::stats::Counter;
use crate::timeline::WindowRule;
use crate::variant::{Variant, VariantDef};
use crate::vm::{Res, Td, Vm, VmConfig};

/// Every scenario, in the order `cargo xtask scenarios` lists them. The
/// first one is the default of every command.
pub static ALL: [&Scenario; 3] = [&d15293::SCENARIO, &collapse::SCENARIO, &swapoff::SCENARIO];

/// The handle of each entry of [`ALL`] (same order).
pub const D15293: ScenarioId = ScenarioId(0);
/// See [`ALL`].
pub const COLLAPSE: ScenarioId = ScenarioId(1);
/// See [`ALL`].
pub const SWAPOFF: ScenarioId = ScenarioId(2);

/// Workload knobs of a stress request that every scenario reads in its own
/// way; none changes a variant's sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Knobs {
    /// Steer the workload toward the race window (`steer=1`, the default of
    /// a stress request): blind to the variant, it only chooses when and
    /// what the workload does (D15293: `crate::steer`).
    pub steer: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { steer: true }
    }
}

impl Knobs {
    /// The plain random workload (`steer=0`).
    pub const UNSTEERED: Knobs = Knobs { steer: false };
}

/// The scenario's workload for `seed` with `knobs`, on any platform.
pub fn race<P: Platform>(id: ScenarioId, seed: u64, knobs: Knobs) -> Box<dyn Race<P>> {
    match id {
        D15293 => Box::new(d15293::race(seed, knobs)),
        COLLAPSE => Box::new(collapse::race(seed, knobs)),
        SWAPOFF => Box::new(swapoff::race(seed, knobs)),
        _ => unreachable!("ScenarioId is only made for entries of ALL"),
    }
}

/// What a boot test of a scenario expects from a short stress run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// An oracle of one of these kinds fires.
    Caught(&'static [FailureKind]),
    /// The run ends clean (Pass) and the race window opened.
    CleanWithWindow,
}

/// One variant a boot test of `cargo xtask test` runs, and what it expects.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    /// The variant's name.
    pub variant: &'static str,
    /// What the boot test expects of it.
    pub expect: Expect,
}

/// One race.
#[derive(Debug)]
pub struct Scenario {
    /// The name on command lines and in records (`scenario=`).
    pub name: &'static str,
    /// One line on the race.
    pub title: &'static str,
    /// Reviews and commits.
    pub references: &'static [&'static str],
    /// Its variants; the first one is the unpatched code.
    pub variants: &'static [VariantDef],
    /// The variant `stress` runs when none is named.
    pub default_variant: &'static str,
    /// The variant `bench stress` runs when none is named (a clean one).
    pub bench_variant: &'static str,
    /// Which model event counts as "the race window opened".
    pub window: Window,
    /// That event in words.
    pub window_doc: &'static str,
    /// The race window a failure's trace shades (`--trace-out`,
    /// `--trace-svg`, `compare --trace-dir`): which trace events open and
    /// close it ([`crate::timeline`]).
    pub trace_window: WindowRule,
    /// The counters that show what the race costs or how often its
    /// preconditions happen, by name in the runner's live status line,
    /// compare's table and its JSON (`costs`).
    pub costs: &'static [Counter],
    /// The oracles that can catch it.
    pub oracles: &'static [FailureKind],
    /// The boot tests that guard it (one failing, one clean variant).
    pub guards: &'static [Guard],
    /// The fewest vCPUs on which `compare --until-confident` may call a
    /// variant clean: those its failing variants were measured to fail on.
    /// On fewer, a window can open without the race's other preconditions
    /// (a second faulting CPU, say), and a broken variant can collect
    /// clean window hits.
    pub verdict_cpus: u32,
}

/// A handle on one entry of [`ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScenarioId(u8);

impl ScenarioId {
    /// The default scenario (D15293).
    pub const DEFAULT: ScenarioId = D15293;

    /// Whether it is the default scenario.
    pub fn is_default(&self) -> bool {
        *self == Self::DEFAULT
    }

    /// Every scenario.
    pub fn all() -> impl Iterator<Item = ScenarioId> {
        (0..ALL.len()).map(|i| ScenarioId(i as u8))
    }

    /// The scenario's definition.
    pub fn get(self) -> &'static Scenario {
        ALL[self.0 as usize]
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.get().name
    }

    /// The scenario called `name`.
    pub fn find(name: &str) -> Option<ScenarioId> {
        Self::all().find(|s| s.name() == name)
    }

    /// Its variants, in report order.
    pub fn variants(self) -> impl Iterator<Item = Variant> {
        (0..self.get().variants.len()).map(move |i| Variant::new(self, i as u8))
    }

    /// Its variant called `name`.
    pub fn variant(self, name: &str) -> Option<Variant> {
        self.variants().find(|v| v.name() == name)
    }

    /// Its variant called `name`, or an error naming the valid ones (and
    /// the scenario the name belongs to, if another).
    pub fn variant_or_err(self, name: &str) -> Result<Variant, String> {
        if let Some(v) = self.variant(name) {
            return Ok(v);
        }
        let owner = Variant::find(name)
            .map(|v| alloc::format!(" (it is a variant of scenario {})", v.scenario().name))
            .unwrap_or_default();
        Err(alloc::format!(
            "scenario {} has no variant '{name}'{owner}; valid: {}",
            self.name(),
            self.valid_names()
        ))
    }

    /// The default variant of `stress`.
    pub fn default_variant(self) -> Variant {
        self.variant(self.get().default_variant)
            .unwrap_or(Variant::new(self, 0))
    }

    /// The default variant of `bench stress`.
    pub fn bench_variant(self) -> Variant {
        self.variant(self.get().bench_variant)
            .unwrap_or(Variant::new(self, 0))
    }

    /// Comma-separated variant names (for error messages).
    pub fn valid_names(self) -> String {
        let names: Vec<&str> = self.variants().map(|v| v.name()).collect();
        names.join(", ")
    }

    /// Comma-separated scenario names (for error messages).
    pub fn valid_scenarios() -> String {
        let names: Vec<&str> = Self::all().map(|s| s.name()).collect();
        names.join(", ")
    }
}

impl Default for ScenarioId {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for ScenarioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown scenario name; the message lists the valid ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownScenario(pub String);

impl fmt::Display for UnknownScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scenario '{}' (valid: {})",
            self.0,
            ScenarioId::valid_scenarios()
        )
    }
}

impl core::str::FromStr for ScenarioId {
    type Err = UnknownScenario;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScenarioId::find(s).ok_or_else(|| UnknownScenario(s.into()))
    }
}

impl Serialize for ScenarioId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ScenarioId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// What one CPU does, as the driver sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// For diagnostics ("fork", "fault", ...).
    pub name: &'static str,
    /// The run's main loop: a host budget counts its iterations, and the
    /// other CPUs are asked to finish once every leading CPU is done.
    pub leads: bool,
}

/// A scenario's workload on one machine: its roles and the loop each CPU runs.
pub trait Race<P: Platform>: Send + Sync {
    /// The machine a run of `variant` on `ncpus` CPUs needs.
    fn config(&self, variant: Variant, ncpus: usize) -> VmConfig;
    /// The role of every CPU.
    fn roles(&self, ncpus: usize) -> Vec<Role>;
    /// Builds the initial processes (CPU 0, before the others start).
    fn setup(&mut self, vm: &Vm<P>, td: &mut Td) -> Res<()>;
    /// Runs `cpu`'s role until the run finishes or `budget` iterations are
    /// done, calling `after` after every iteration.
    fn run_cpu(
        &self,
        vm: &Vm<P>,
        td: &mut Td,
        cpu: usize,
        ncpus: usize,
        budget: Option<u64>,
        after: &mut dyn FnMut(&Vm<P>),
    ) -> Res<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn every_scenario_is_consistent() {
        assert_eq!(D15293.name(), "d15293");
        assert_eq!(COLLAPSE.name(), "collapse");
        for s in ScenarioId::all() {
            assert_eq!(s.name().parse::<ScenarioId>(), Ok(s));
            assert_eq!(s.default_variant().name(), s.get().default_variant);
            assert_eq!(s.bench_variant().name(), s.get().bench_variant);
            for g in s.get().guards {
                assert!(s.variant(g.variant).is_some(), "{}: guard {}", s, g.variant);
            }
            assert!(!s.get().references.is_empty() && !s.get().oracles.is_empty());
            let costs = s.get().costs;
            assert!(!costs.is_empty(), "{s}: no cost counters");
            for (i, c) in costs.iter().enumerate() {
                assert!(!costs[..i].contains(c), "{s}: {} twice", c.name());
            }
        }
        let e = "nope".parse::<ScenarioId>().unwrap_err().to_string();
        assert!(e.contains("'nope'") && e.contains("d15293"), "{e}");
    }
}
