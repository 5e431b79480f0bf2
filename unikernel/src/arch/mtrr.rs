//! Memory types. Under PVH on microvm no firmware programs the MTRRs, so they
//! are disabled and *all* memory is uncached — invisible under TCG, but KVM
//! honours it and every access then goes to memory (a lock round trip took
//! 15 µs). Where the MTRRs are disabled, each CPU enables them with
//! write-back as the default type; MMIO stays uncached through the PCD/PWT
//! bits `paging` sets. MTRRs a firmware did program (SeaBIOS on q35) are kept.

use core::arch::x86_64::__cpuid;

use x86_64::registers::model_specific::Msr;

/// IA32_MTRR_DEF_TYPE.
const MTRR_DEF_TYPE: u32 = 0x2ff;
/// MTRRs enabled (bit 11), fixed ranges disabled, default type write-back (6).
const ENABLED_WRITE_BACK: u64 = (1 << 11) | 6;

/// Enables write-back as the default memory type on this CPU if its MTRRs
/// are disabled. Call early on every CPU.
pub fn enable_write_back() {
    let has_mtrr = __cpuid(1).edx & (1 << 12) != 0;
    if !has_mtrr {
        return;
    }
    let mut def_type = Msr::new(MTRR_DEF_TYPE);
    // SAFETY: IA32_MTRR_DEF_TYPE exists (CPUID.1:EDX.MTRR); reading it has
    // no side effects. Writing it only when the MTRRs are off makes ordinary
    // RAM write-back, which is what the kernel assumes anyway; MMIO pages
    // are mapped uncached (PCD|PWT), which overrides a write-back MTRR type.
    unsafe {
        if def_type.read() & (1 << 11) == 0 {
            def_type.write(ENABLED_WRITE_BACK);
        }
    }
}
