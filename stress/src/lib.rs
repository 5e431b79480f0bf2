//! forkswap's VM model and everything the kernel and the runner share.
//!
//! The model mirrors FreeBSD's `sys/vm` of mid-2018 closely enough to replay
//! the race of review D15293 between `vmspace_fork`/`vm_object_split` and a
//! swap-in with read-behind, and to measure each candidate patch ([`Variant`]).
//! It is `no_std` + `alloc` and has no `unsafe`: the unikernel runs it on real
//! CPUs, the host tests run it under std threads or a controlled scheduler.
//!
//! Shared with the runner: the serial protocol ([`proto`]), KTAP lines
//! ([`ktap`]), counters ([`stats`]), trace events ([`trace`]) and failures.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod failure;
pub mod ktap;
pub mod proto;
pub mod stats;
pub mod trace;
pub mod variant;

pub use failure::{Failure, FailureKind};
pub use stats::{Counter, Counters, Stats};
pub use variant::Variant;
