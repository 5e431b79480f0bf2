//! The PVH boot information (`struct hvm_start_info`, Xen's `arch-x86/hvm/
//! start_info.h`): where QEMU left the kernel command line, the ACPI RSDP and
//! the memory map. [`BootInfo::read`] copies out what the kernel needs, before
//! anything can overwrite low memory.

use alloc::string::String;

/// `hvm_start_info.magic`.
const MAGIC: u32 = 0x336e_c578;
/// Memory map entry type for usable RAM.
const TYPE_RAM: u32 = 1;
/// Most RAM ranges kept.
const MAX_RAM: usize = 32;
/// Longest command line copied.
const MAX_CMDLINE: usize = 4096;

#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    // version >= 1:
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// What the kernel keeps from the start info.
pub struct BootInfo {
    /// The kernel command line as received.
    pub cmdline: String,
    /// Physical address of the ACPI RSDP, 0 if not given.
    pub rsdp: u64,
    ram: [(u64, u64); MAX_RAM],
    ram_len: usize,
}

impl BootInfo {
    /// Reads the start info at `paddr`.
    ///
    /// # Safety
    /// `paddr` must be the address QEMU passed in `ebx`, identity-mapped, with
    /// the structures it points to intact.
    pub unsafe fn read(paddr: u64) -> Result<BootInfo, &'static str> {
        // SAFETY: the caller vouches for the start info; it is read-only here.
        let info = unsafe { &*(paddr as *const StartInfo) };
        if info.magic != MAGIC {
            return Err("bad hvm_start_info magic (not booted through PVH?)");
        }
        if info.version < 1 || info.memmap_paddr == 0 {
            return Err("hvm_start_info has no memory map (version 0)");
        }
        let mut cmdline = String::new();
        if info.cmdline_paddr != 0 {
            // SAFETY: the command line is a NUL-terminated string in memory
            // QEMU set up; we stop at the NUL or after MAX_CMDLINE bytes.
            let bytes = unsafe {
                let p = info.cmdline_paddr as *const u8;
                let len = (0..MAX_CMDLINE)
                    .find(|&i| *p.add(i) == 0)
                    .unwrap_or(MAX_CMDLINE);
                core::slice::from_raw_parts(p, len)
            };
            cmdline = String::from_utf8_lossy(bytes).into_owned();
        }
        let mut boot = BootInfo {
            cmdline,
            rsdp: info.rsdp_paddr,
            ram: [(0, 0); MAX_RAM],
            ram_len: 0,
        };
        for i in 0..info.memmap_entries as usize {
            // SAFETY: the memory map has `memmap_entries` entries at
            // `memmap_paddr`, set up by QEMU's firmware.
            let e = unsafe { &*(info.memmap_paddr as *const MemmapEntry).add(i) };
            if e.kind == TYPE_RAM && e.size > 0 && boot.ram_len < MAX_RAM {
                boot.ram[boot.ram_len] = (e.addr, e.addr + e.size);
                boot.ram_len += 1;
            }
        }
        if boot.ram_len == 0 {
            return Err("the memory map has no RAM");
        }
        Ok(boot)
    }

    /// Usable RAM ranges `[start, end)`.
    pub fn ram(&self) -> &[(u64, u64)] {
        &self.ram[..self.ram_len]
    }

    /// True if `[start, end)` overlaps RAM.
    pub fn has_ram(&self, start: u64, end: u64) -> bool {
        self.ram().iter().any(|&(s, e)| s < end && start < e)
    }
}
