//! The forkswap kernel: a small SMP unikernel that QEMU boots directly (PVH
//! ELF note, `-kernel`) on microvm or q35, and on which the VM model of
//! `stress` runs on every CPU with a virtio-blk disk as its swap device.
//!
//! What the model and the runner use:
//! - [`cpu::id`], [`cpu::count`]: which CPU (0 = BSP), how many are online;
//! - [`smp::run_on_all`]: run a closure on every CPU at once (call from CPU 0);
//! - [`time::now_ns`], [`time::delay_ns`], [`time::set_tick_hook`]: the
//!   clock, busy delays and a per-tick hook (250 Hz on every CPU);
//! - [`disk::get`]: the swap disk ([`disk::Disk::read_pages`],
//!   [`disk::Disk::write_pages`], [`disk::Disk::capacity_pages`]);
//! - [`console::record`], [`diag!`]: record lines and `# ` diagnostics;
//! - [`sync::IrqMutex`]: IRQ-safe spinlock;
//! - [`qemu::exit`]: leave QEMU with a `stress::proto::ExitCode`.
//!
//! Boot flow: `arch::entry` (PVH, 32-bit to long mode) → [`boot`] (memory,
//! ACPI, stacks, heap, APs, calibration) → [`modes`] (`mode=` on the command
//! line). The console, command line, exit codes and boot tests follow the
//! contract in `docs/contract.md`. On the host the crate builds a stub
//! `main` so that workspace-wide clippy and tests compile; its pure logic
//! (command line, DSDT scan, frame allocator) is tested there.
#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod aml;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod cmdline;
#[cfg_attr(not(target_os = "none"), allow(dead_code))]
mod mem;

#[cfg(target_os = "none")]
mod acpi;
#[cfg(target_os = "none")]
mod apic;
#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod cpu;
#[cfg(target_os = "none")]
mod crash;
#[cfg(target_os = "none")]
mod disk;
#[cfg(target_os = "none")]
mod diskbench;
#[cfg(target_os = "none")]
mod irq;
#[cfg(target_os = "none")]
mod modes;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod pvh;
#[cfg(target_os = "none")]
mod qemu;
#[cfg(target_os = "none")]
mod serial;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod stress_mode;
#[cfg(target_os = "none")]
mod sync;
#[cfg(target_os = "none")]
mod tests;
#[cfg(target_os = "none")]
mod time;
#[cfg(target_os = "none")]
mod virtio;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("forkswap-kernel is built for x86_64-unknown-none: use `cargo xtask build`");
}
