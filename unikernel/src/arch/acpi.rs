//! ACPI, just enough to find the CPUs (the MADT's enabled local APIC and
//! x2APIC entries: QEMU lists every `-smp` CPU there on microvm, pc and q35),
//! the local APIC's physical address, and microvm's virtio-mmio devices
//! (described in the DSDT, see [`crate::arch::aml`]).

use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use alloc::vec::Vec;

use crate::arch::cpu::MAX_CPUS;
use crate::cmdline::VirtioMmio;

/// ACPI tables are read in place: all RAM below 4 GiB is identity-mapped.
#[derive(Clone, Copy, Debug)]
struct IdentityMapped;

impl AcpiHandler for IdentityMapped {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let ptr = NonNull::new(physical_address as *mut T).expect("ACPI table at address 0");
        // SAFETY: the region is identity-mapped (the boot page tables cover
        // the low 4 GiB, where QEMU puts its ACPI tables) and stays mapped.
        unsafe { PhysicalMapping::new(physical_address, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The CPUs the MADT lists as enabled.
pub struct Cpus {
    /// Physical address of the local APIC registers (xAPIC mode).
    pub lapic_addr: u64,
    apic_ids: [u32; MAX_CPUS],
    len: usize,
    /// Enabled CPUs beyond [`MAX_CPUS`], ignored.
    pub ignored: usize,
    /// virtio-mmio windows the DSDT describes.
    pub virtio_mmio: Vec<VirtioMmio>,
}

impl Cpus {
    /// APIC ids of the enabled CPUs, in MADT order.
    pub fn apic_ids(&self) -> &[u32] {
        &self.apic_ids[..self.len]
    }

    fn push(&mut self, id: u32) {
        if self.apic_ids().contains(&id) {
            return;
        }
        if self.len == MAX_CPUS {
            self.ignored += 1;
        } else {
            self.apic_ids[self.len] = id;
            self.len += 1;
        }
    }
}

/// MADT flag: the processor is enabled.
const ENABLED: u32 = 1;

/// Reads the MADT (and the DSDT) through the RSDP at `rsdp` (or found in the
/// BIOS area if 0).
pub fn cpus(rsdp: u64) -> Result<Cpus, &'static str> {
    // SAFETY: `rsdp` is the address QEMU gave in the PVH start info (or 0),
    // the tables are identity-mapped and nothing writes them.
    let tables = unsafe {
        if rsdp != 0 {
            AcpiTables::from_rsdp(IdentityMapped, rsdp as usize)
        } else {
            AcpiTables::search_for_rsdp_bios(IdentityMapped)
        }
    }
    .map_err(|_| "no valid ACPI RSDP/RSDT")?;
    let madt = tables.find_table::<Madt>().map_err(|_| "no ACPI MADT")?;
    let madt = madt.get();
    let mut cpus = Cpus {
        lapic_addr: madt.local_apic_address as u64,
        apic_ids: [0; MAX_CPUS],
        len: 0,
        ignored: 0,
        virtio_mmio: Vec::new(),
    };
    for entry in madt.entries() {
        match entry {
            MadtEntry::LocalApic(e) if e.flags & ENABLED != 0 => cpus.push(e.apic_id as u32),
            MadtEntry::LocalX2Apic(e) if e.flags & ENABLED != 0 => cpus.push(e.x2apic_id),
            MadtEntry::LocalApicAddressOverride(e) => cpus.lapic_addr = e.local_apic_address,
            _ => {}
        }
    }
    if let Ok(dsdt) = tables.dsdt() {
        // SAFETY: the DSDT's AML stream is identity-mapped, read-only memory
        // of `length` bytes that QEMU's firmware set up.
        let aml =
            unsafe { core::slice::from_raw_parts(dsdt.address as *const u8, dsdt.length as usize) };
        cpus.virtio_mmio = crate::arch::aml::virtio_mmio_devices(aml);
    }
    if cpus.len == 0 {
        return Err("the MADT lists no enabled CPU");
    }
    Ok(cpus)
}
