//! forkswap's VM model and everything the kernel and the runner share.
//!
//! The model mirrors FreeBSD's `sys/vm` of mid-2018 closely enough to replay
//! the race of review D15293 between `vmspace_fork`/`vm_object_split` and a
//! swap-in with read-behind, and to measure each candidate patch ([`Variant`]); further races are
//! scenarios beside it ([`scenarios`]).
//! It is `no_std` + `alloc` and has no `unsafe`: the unikernel runs it on real
//! CPUs, the host tests run it under std threads or a controlled scheduler.
//!
//! Map of the model (FreeBSD file in parentheses):
//! - [`page`] frames, busy, free list (`vm_page.c`); [`object`] objects,
//!   references, collapse (`vm_object.c`); [`split`] `vm_object_split`;
//! - [`swap`] swap space (`blist`); [`swap_pager`] `getpages`/`putpages`,
//!   swap metadata (`swap_pager.c`); [`pbuf`] `getpbuf`;
//! - [`map`] maps and the timestamp (`vm_map.c`); [`fork`] `vmspace_fork`,
//!   exit, map edits; [`fault`] `vm_fault`; [`pageout`] the page daemon;
//! - [`image`] pmaps and the stale-data oracle; [`oracle`] conservation;
//!   [`vm`] the machine, threads, waits and failures; [`platform`] what the
//!   host provides; [`sites`] the switchable points patches change.
//!
//! The model's modules are crate-private: the kernel, the runner and the
//! tests reach the model only through [`vm`], [`run`], [`scenarios`] and the
//! wire types below (and [`fork::Region`], a workload's layout).
//!
//! Above the model: [`scenarios`] (one module per race: its variants as
//! settings of [`sites`], its window, its oracles, its workload and roles)
//! and [`run`] (the one run driver and watchdog of host and kernel).
//!
//! Shared with the runner: the serial protocol ([`proto`]), KTAP lines
//! ([`ktap`]), counters ([`stats`]), trace events ([`trace`]) and failures;
//! a failure's trace as a [`timeline`] of spans and as a [`chrome_trace`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod chrome_trace;
pub mod failure;
pub(crate) mod fault;
pub mod fork;
#[cfg(feature = "std")]
pub mod host;
pub(crate) mod image;
pub mod ktap;
pub(crate) mod map;
pub(crate) mod object;
pub mod oracle;
pub(crate) mod page;
pub(crate) mod pageout;
pub(crate) mod pbuf;
pub mod platform;
pub mod proto;
pub mod run;
pub mod scenarios;
pub mod sites;
pub(crate) mod split;
pub mod stats;
pub(crate) mod swap;
pub(crate) mod swap_pager;
pub(crate) mod swapoff;
pub(crate) mod sync;
#[cfg(all(test, feature = "std"))]
mod testutil;
pub mod timeline;
pub mod timers;
pub mod trace;
pub mod variant;
pub mod vm;

pub use failure::{Failure, FailureKind};
pub use platform::{Platform, Site};
pub use scenarios::ScenarioId;
pub use sites::Sites;
pub use stats::{Counter, Counters, Stats};
pub use variant::Variant;
pub use vm::{Td, Vm, VmConfig};
