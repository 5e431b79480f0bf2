//! A patch variant: one setting of the model's [`Sites`] within one
//! scenario, with its name, a one-line summary, the sites it touches and
//! where it comes from.
//!
//! A [`Variant`] is a small copyable handle (scenario, index). Variant names
//! are unique across every scenario (a test checks it), so a variant is
//! written on the wire as its name alone — the kebab string records and
//! reports always carried — and read back by that name.

use alloc::string::String;
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::scenarios::{Scenario, ScenarioId};
use crate::sites::Sites;

/// What one variant is: the sites it switches and why.
#[derive(Debug)]
pub struct VariantDef {
    /// The name used on command lines, in records and in reports.
    pub name: &'static str,
    /// One line on what the variant changes.
    pub summary: &'static str,
    /// The setting of the model's switchable sites.
    pub sites: Sites,
    /// The sites it changes, as `function: what` (for `scenarios` and docs).
    pub touches: &'static [&'static str],
    /// The review, commit or message it comes from.
    pub reference: &'static str,
}

/// One patch variant of one scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Variant {
    scenario: ScenarioId,
    index: u8,
}

impl Variant {
    /// Variant `index` of `scenario` (scenario modules name theirs as constants).
    pub const fn new(scenario: ScenarioId, index: u8) -> Self {
        Variant { scenario, index }
    }

    /// The scenario it belongs to.
    pub fn scenario(self) -> &'static Scenario {
        self.scenario.get()
    }

    /// Its scenario's id.
    pub const fn scenario_id(self) -> ScenarioId {
        self.scenario
    }

    /// Its place in its scenario's list.
    pub const fn index(self) -> u8 {
        self.index
    }

    /// Its definition.
    pub fn def(self) -> &'static VariantDef {
        &self.scenario().variants[self.index as usize]
    }

    /// Its short name (`--variant`).
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// One line: what the patch does.
    pub fn summary(self) -> &'static str {
        self.def().summary
    }

    /// The sites this variant switches.
    pub fn sites(self) -> Sites {
        self.def().sites
    }

    /// The variant called `name`, in any scenario.
    pub fn find(name: &str) -> Option<Variant> {
        ScenarioId::all().find_map(|s| s.variant(name))
    }

    /// Every variant of every scenario, scenario by scenario.
    pub fn all() -> impl Iterator<Item = Variant> {
        ScenarioId::all().flat_map(|s| s.variants())
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a variant name that no scenario has; the message lists them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant(pub String);

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown variant '{}' (valid:", self.0)?;
        for (i, s) in ScenarioId::all().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            write!(f, "{sep}{}: {}", s.get().name, s.valid_names())?;
        }
        f.write_str(")")
    }
}

impl FromStr for Variant {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::find(s).ok_or_else(|| UnknownVariant(s.into()))
    }
}

impl Serialize for Variant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Variant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    #[test]
    fn names_roundtrip_and_are_unique() {
        let all: Vec<Variant> = Variant::all().collect();
        for v in &all {
            assert_eq!(v.name().parse::<Variant>(), Ok(*v));
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, alloc::format!("\"{}\"", v.name()));
            assert_eq!(serde_json::from_str::<Variant>(&json).unwrap(), *v);
            assert_eq!(all.iter().filter(|w| w.name() == v.name()).count(), 1);
        }
        let e = "nope".parse::<Variant>().unwrap_err().to_string();
        assert!(
            e.contains("unknown variant 'nope'") && e.contains("swap-prealloc"),
            "{e}"
        );
    }
}
