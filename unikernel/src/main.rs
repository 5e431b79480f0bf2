//! The forkswap kernel: a small SMP unikernel that QEMU boots directly (PVH
//! ELF note, `-kernel`) on microvm or q35, and on which the VM model of
//! `stress` runs on every CPU with a virtio-blk disk as its swap device.
//!
//! What the model and the runner use:
//! - [`cpu::id`], [`cpu::count`]: which CPU (0 = BSP), how many are online;
//! - [`smp::run_on_all`]: run a closure on every CPU at once (call from CPU 0);
//! - [`time::now_ns`], [`time::sleep_ns`], [`time::set_tick_hook`]: the
//!   clock, delays that halt through whole ticks, and a per-tick hook
//!   (250 Hz on every CPU; `mode=stress` runs at 10 kHz);
//! - [`disk::get`]: the swap disk ([`disk::Disk::read_pages`],
//!   [`disk::Disk::write_pages`], [`disk::Disk::capacity_pages`]);
//! - [`console::record`], [`diag!`]: record lines and `# ` diagnostics;
//! - [`sync::IrqMutex`]: IRQ-safe spinlock;
//! - [`qemu::exit`]: leave QEMU with a `stress::proto::ExitCode`.
//!
//! Boot flow: `arch::entry` (PVH, 32-bit to long mode) → `arch::boot`
//! (memory, ACPI, stacks, heap, APs, calibration) → [`modes`] (`mode=` on the
//! command line).
//!
//! Layout: all hardware access and all `unsafe` live in three fenced folders
//! behind safe functions — [`arch`] (CPU and platform: entry, boot, APIC,
//! ACPI, PVH, timers, serial, SMP, interrupts, page tables, QEMU exit),
//! [`drivers`] (virtio, the swap disk) and [`mem`] (frames, heap, stacks) —
//! plus [`crash`], the one module whose unsafe is deliberately wrong. The
//! crate denies `unsafe_code`; only those four modules allow it, and
//! [`modes`] (`probe`, `tests`, `stress`, `diskbench`) forbids it outright.
//! The console, command line, exit codes and boot tests follow the
//! contract in `docs/contract.md`. On the host the crate builds a stub
//! `main` so that workspace-wide clippy and tests compile; its pure logic
//! (command line, DSDT scan, frame allocator) is tested there.
#![cfg_attr(target_os = "none", no_std, no_main)]
// The fence: only `arch`, `drivers`, `mem` and the deliberate `crash` module
// may contain `unsafe` (each says `allow(unsafe_code)` at its top); everything
// else uses their safe functions.
#![deny(unsafe_code)]

extern crate alloc;

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod arch;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod cmdline;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod mem;

#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod crash;
#[cfg(target_os = "none")]
mod drivers;
#[cfg(target_os = "none")]
mod modes;

// The safe platform API the modes use, under its short names.
#[cfg(target_os = "none")]
use arch::{apic, cpu, irq, panic, qemu, smp, sync, time};
#[cfg(target_os = "none")]
use drivers::disk;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("forkswap-kernel is built for x86_64-unknown-none: use `cargo xtask build`");
}
