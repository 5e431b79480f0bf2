//! A failure is a value: what an oracle saw, with the seed, the variant, the
//! CPU and every CPU's last trace events. The model never panics on a failure;
//! it returns one of these and stops its run.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use serde::{Deserialize, Serialize};

use crate::scenarios::ScenarioId;
use crate::trace::CpuTrace;
use crate::variant::Variant;

/// Which oracle fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// split found a page at an index it had already moved into the new
    /// object, and inserting it there hit the occupied index: the object was
    /// repopulated behind split's back (the D15293 race).
    Repopulated,
    /// A page was inserted at an occupied (object, pindex) for any other reason.
    DuplicatePage,
    /// A load saw contents other than the version its image expects.
    StaleData,
    /// A page still mapped by some pmap was freed (FreeBSD's "freeing mapped
    /// page" assertion; without INVARIANTS a use-after-free).
    FreedMapped,
    /// Frames or swap blocks do not add up (something leaked without being counted).
    Conservation,
    /// No CPU made progress within the watchdog period.
    Hang,
    /// The swap device failed an I/O (an infrastructure problem, not a finding).
    SwapIo,
    /// A swap block looked up before the object lock was dropped was used
    /// after the object stopped owning it at that index (freed, reused or
    /// moved behind the user's back): read into a page, or paged in when
    /// the object holds no block there (FreeBSD panics: "read from swap
    /// failed"). The swapoff race of r358024.
    SwapUseAfterFree,
}

impl FailureKind {
    /// Every kind, in report order.
    pub const ALL: [FailureKind; 8] = [
        FailureKind::Repopulated,
        FailureKind::DuplicatePage,
        FailureKind::StaleData,
        FailureKind::FreedMapped,
        FailureKind::Conservation,
        FailureKind::Hang,
        FailureKind::SwapIo,
        FailureKind::SwapUseAfterFree,
    ];

    /// The kebab-case name used in records and reports.
    pub const fn name(self) -> &'static str {
        match self {
            FailureKind::Repopulated => "repopulated",
            FailureKind::DuplicatePage => "duplicate-page",
            FailureKind::StaleData => "stale-data",
            FailureKind::FreedMapped => "freed-mapped",
            FailureKind::Conservation => "conservation",
            FailureKind::Hang => "hang",
            FailureKind::SwapIo => "swap-io",
            FailureKind::SwapUseAfterFree => "swap-use-after-free",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One caught failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure the oracle caught.
    pub kind: FailureKind,
    /// The run's seed (replays it).
    pub seed: u64,
    /// The scenario run. Written only when not the default scenario, so
    /// the records of the first scenario read exactly as before; a record
    /// without it is of the default scenario.
    #[serde(default, skip_serializing_if = "ScenarioId::is_default")]
    pub scenario: ScenarioId,
    /// The variant run (it names its patch).
    pub variant: Variant,
    /// The CPU whose oracle fired.
    pub cpu: u32,
    /// Milliseconds since the run started.
    pub ms: u64,
    /// One line saying exactly what was seen.
    pub detail: String,
    /// The last trace events of every CPU.
    pub traces: Vec<CpuTrace>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (variant {}, seed {:#x}, cpu {}, at {} ms): {}",
            self.kind, self.variant, self.seed, self.cpu, self.ms, self.detail
        )
    }
}
