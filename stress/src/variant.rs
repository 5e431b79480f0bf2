//! The patch variants of review D15293, chosen at run time.
//!
//! Every variant runs the same model and the same workload; each one changes
//! behaviour only at the sites its real diff touched. Those sites test the
//! variant in exactly one place each, marked `D15293 site` in the source:
//!
//! | variant                | site(s)                                            |
//! |------------------------|----------------------------------------------------|
//! | `baseline`             | none (FreeBSD around r334544)                      |
//! | `split-skip`           | `object::split`, page loop (kib's first diff)      |
//! | `split-skip-inverted`  | the same site, condition inverted                  |
//! | `split-restart`        | `object::split`, restart point (alc's diff)        |
//! | `swap-clip`            | `swap_pager::getpages`, before dropping the lock   |
//! | `swap-prealloc`        | `swap_pager::getpages`, order of pbuf/alloc (r335171) |
//! | `split-pipwait`        | `object::split`, start (alc's pip-wait thought)    |
//! | `no-timestamp-recheck` | `fault::vm_fault`, map timestamp re-check          |

use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// One patch variant. See the module documentation for where each one acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Baseline,
    SplitSkip,
    SplitSkipInverted,
    SplitRestart,
    SwapClip,
    SwapPrealloc,
    SplitPipwait,
    NoTimestampRecheck,
}

impl Variant {
    /// All variants, in the order reports list them.
    pub const ALL: [Variant; 8] = [
        Variant::Baseline,
        Variant::SplitSkip,
        Variant::SplitSkipInverted,
        Variant::SplitRestart,
        Variant::SwapClip,
        Variant::SwapPrealloc,
        Variant::SplitPipwait,
        Variant::NoTimestampRecheck,
    ];

    /// The name used on command lines, in records and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Baseline => "baseline",
            Variant::SplitSkip => "split-skip",
            Variant::SplitSkipInverted => "split-skip-inverted",
            Variant::SplitRestart => "split-restart",
            Variant::SwapClip => "swap-clip",
            Variant::SwapPrealloc => "swap-prealloc",
            Variant::SplitPipwait => "split-pipwait",
            Variant::NoTimestampRecheck => "no-timestamp-recheck",
        }
    }

    /// One line on what the variant changes (for `--help` and reports).
    pub const fn summary(self) -> &'static str {
        match self {
            Variant::Baseline => "FreeBSD before the fix (r334544)",
            Variant::SplitSkip => {
                "kib's first diff: split frees an orig page whose index the new object holds"
            }
            Variant::SplitSkipInverted => {
                "the same check with the condition inverted (avg's question)"
            }
            Variant::SplitRestart => {
                "alc's diff: split restarts find_least at the busy page's pindex"
            }
            Variant::SwapClip => {
                "alc's diff: getpages clips rbehind to the resident predecessor before unlocking"
            }
            Variant::SwapPrealloc => {
                "the committed fix (r335171): allocate behind/ahead pages before getpbuf"
            }
            Variant::SplitPipwait => {
                "alc's thought: split waits for paging-in-progress to drain first"
            }
            Variant::NoTimestampRecheck => {
                "vm_fault skips the map timestamp re-check after the pager"
            }
        }
    }

    /// Comma-separated list of every valid name (for error messages).
    pub fn valid_names() -> alloc::string::String {
        let mut s = alloc::string::String::new();
        for (i, v) in Self::ALL.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(v.name());
        }
        s
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an unknown variant name; its message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant(pub alloc::string::String);

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown variant '{}' (valid: {})",
            self.0,
            Variant::valid_names()
        )
    }
}

impl FromStr for Variant {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.name() == s)
            .ok_or_else(|| UnknownVariant(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_roundtrip() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>(), Ok(v));
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, alloc::format!("\"{}\"", v.name()));
        }
        let e = "nope".parse::<Variant>().unwrap_err().to_string();
        assert!(
            e.contains("unknown variant 'nope'") && e.contains("swap-prealloc"),
            "{e}"
        );
    }
}
