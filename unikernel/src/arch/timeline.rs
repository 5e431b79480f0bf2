//! The boot timeline: the BSP stamps the TSC at the end of each boot phase
//! ([`mark`]) and, once the boot is over and the clock calibrated, prints
//! them all on one diagnostic line ([`print`]) that `cargo xtask bench boot`
//! reads (format in `docs/contract.md`). Only when the command line says
//! `boot_timeline=1` (`Cmdline::boot_timeline`): every byte on the serial console costs a few
//! microseconds (one host `write` each), which the probe should not pay.
//!
//! `# boot timeline us: pvh=12 acpi=180 ... virtio=2101`
//!
//! Each value is the time from kernel entry to the end of that phase, in
//! microseconds, in boot order.

use core::fmt::Write;

use crate::arch::sync::IrqMutex;
use crate::arch::time;

/// Most phases kept (more are dropped).
const MAX_PHASES: usize = 24;

/// The phases stamped so far: (name, TSC at its end).
struct Stamps {
    phases: [(&'static str, u64); MAX_PHASES],
    len: usize,
}

static STAMPS: IrqMutex<Stamps> = IrqMutex::new(Stamps {
    phases: [("", 0); MAX_PHASES],
    len: 0,
});

/// Marks the end of phase `name` now.
pub fn mark(name: &'static str) {
    let tsc = time::rdtsc();
    let mut s = STAMPS.lock();
    if s.len < MAX_PHASES {
        let i = s.len;
        s.phases[i] = (name, tsc);
        s.len += 1;
    }
}

/// Prints the `# boot timeline us: ...` line (after [`time::calibrate`]).
pub fn print() {
    let mut line = alloc::string::String::from("boot timeline us:");
    let s = STAMPS.lock();
    for &(name, tsc) in &s.phases[..s.len] {
        let _ = write!(line, " {name}={}", time::tsc_to_ns_since_entry(tsc) / 1000);
    }
    drop(s);
    crate::diag!("{line}");
}
