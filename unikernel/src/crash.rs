//! Deliberate failures (`mode=crash kind=…`).

use crate::cmdline::CrashKind;

/// Fails as `kind` says, on CPU `cpu`.
pub fn run(kind: CrashKind, _cpu: usize) -> ! {
    panic!("crash {kind:?} not implemented yet")
}
