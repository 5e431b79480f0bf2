//! The CPU and the platform, and the fence around their `unsafe`: every
//! register, port, MSR and firmware-table access of the kernel is here (or in
//! [`crate::drivers`] / [`crate::mem`]), each behind a safe function with its
//! `SAFETY:` argument next to it.
//!
//! - start-up: the PVH entry ([`entry`]) and its boot information ([`pvh`]),
//!   the BSP's boot sequence ([`boot`]), the AP trampoline ([`trampoline`])
//!   and the SMP bring-up and job runner ([`smp`]), the boot timeline
//!   ([`timeline`]);
//! - the CPU: identity and per-CPU slots ([`cpu`]), descriptor tables
//!   ([`gdt`], [`idt`]), memory types ([`mtrr`]), page tables ([`paging`]),
//!   I/O ports ([`port`]), IRQ-safe locks ([`sync`]);
//! - the platform: ACPI tables ([`acpi`], [`aml`]), the local APIC
//!   ([`apic`]), interrupts and the legacy PIC ([`irq`]), clocks and the tick
//!   ([`time`]), COM1 ([`serial`]), fatal errors ([`panic`]) and leaving QEMU
//!   ([`qemu`]).
//!
//! Page tables stay here rather than in [`crate::mem`]: they are the x86_64
//! format set up by the entry assembly and shared with the AP trampoline,
//! while `mem` only hands out physical frames, heap and stacks through them.
#![allow(unsafe_code)]

pub mod aml;

#[cfg(target_os = "none")]
pub mod acpi;
#[cfg(target_os = "none")]
pub mod apic;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod cpu;
#[cfg(target_os = "none")]
pub mod entry;
#[cfg(target_os = "none")]
pub mod gdt;
#[cfg(target_os = "none")]
pub mod idt;
#[cfg(target_os = "none")]
pub mod irq;
#[cfg(target_os = "none")]
pub mod mtrr;
#[cfg(target_os = "none")]
pub mod paging;
#[cfg(target_os = "none")]
pub mod panic;
#[cfg(target_os = "none")]
pub mod port;
#[cfg(target_os = "none")]
pub mod pvh;
#[cfg(target_os = "none")]
pub mod qemu;
#[cfg(target_os = "none")]
pub mod serial;
#[cfg(target_os = "none")]
pub mod smp;
#[cfg(target_os = "none")]
pub mod sync;
#[cfg(target_os = "none")]
pub mod time;
#[cfg(target_os = "none")]
pub mod timeline;
#[cfg(target_os = "none")]
pub mod trampoline;
