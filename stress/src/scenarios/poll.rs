//! Steering's wait, shared by the scenarios that steer: poll a look at the
//! model (try-locks only, changing nothing) until it finds the window,
//! pausing between looks and holding no lock, for a bounded time.

use crate::platform::Platform;
use crate::vm::Vm;

/// How often a steering loop looks again. Gently: every try-lock may make
/// a faulting CPU spin.
pub const POLL_NS: u64 = 5_000;

impl<P: Platform> Vm<P> {
    /// Calls `look` until it returns `Some` (that value), at most `max_ns`
    /// and while the run is not finishing (`None`), pausing [`POLL_NS`]
    /// between calls.
    pub fn poll_for<T>(&self, max_ns: u64, mut look: impl FnMut() -> Option<T>) -> Option<T> {
        let until = self.p.now_ns().saturating_add(max_ns);
        loop {
            if let Some(v) = look() {
                return Some(v);
            }
            if self.finishing() || self.p.now_ns() >= until {
                return None;
            }
            // Give the CPU away first where the platform can (the kernel
            // halts until its next tick), then the gentle pause.
            self.p.idle();
            self.p.delay(POLL_NS);
        }
    }
}
