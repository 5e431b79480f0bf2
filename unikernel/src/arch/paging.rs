//! The kernel's page tables: one identity map (virtual == physical) shared by
//! every CPU, built with 2 MiB pages by the entry code for the low 4 GiB.
//!
//! This module refines it: MMIO (every 2 MiB page with no RAM in it) becomes
//! uncached, the page at address 0 is unmapped (null dereferences fault),
//! single 4 KiB pages can be unmapped as stack guards (splitting their 2 MiB
//! page into a page table), and MMIO above 4 GiB (64-bit PCI BARs) can be
//! mapped on demand.
//!
//! There is no TLB shootdown: changes that remove or alter a present mapping
//! ([`init`], [`unmap_page`]) are only allowed before the APs start; adding a
//! mapping for unmapped addresses ([`map_mmio`]) is allowed at any time
//! because x86 never caches not-present translations.

use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::VirtAddr;
use x86_64::instructions::tlb;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{PageTable, PageTableFlags as F};

use crate::arch::sync::IrqMutex;
use crate::mem::frame;

const SIZE_2M: u64 = 2 << 20;
const SIZE_4K: u64 = 4096;

/// Serialises page-table updates.
static LOCK: IrqMutex<()> = IrqMutex::new(());
/// Set once the APs may be running: from then on only additions are allowed.
static FROZEN: AtomicBool = AtomicBool::new(false);

/// Why a paging change failed.
#[derive(Debug)]
pub enum PagingError {
    /// No free frame for a page table.
    OutOfFrames,
    /// The address is not mapped by the identity map.
    NotMapped(u64),
}

impl core::fmt::Display for PagingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PagingError::OutOfFrames => write!(f, "no free frame for a page table"),
            PagingError::NotMapped(addr) => write!(f, "{addr:#x} is not in the identity map"),
        }
    }
}

fn pml4() -> &'static mut PageTable {
    let (frame, _) = Cr3::read();
    // SAFETY: CR3 holds the kernel's PML4, which is identity-mapped RAM in
    // the kernel image; callers hold `LOCK`, so this is the only reference.
    unsafe { &mut *(frame.start_address().as_u64() as *mut PageTable) }
}

/// The table an entry points to (identity-mapped).
fn next_table(entry_addr: u64) -> &'static mut PageTable {
    // SAFETY: `entry_addr` comes from a present, non-huge entry of the
    // kernel's tables, so it is a page table in identity-mapped RAM; callers
    // hold `LOCK`, so this is the only reference to it.
    unsafe { &mut *(entry_addr as *mut PageTable) }
}

/// A zeroed frame for a new page table.
fn new_table() -> Result<&'static mut PageTable, PagingError> {
    let addr = frame::alloc_zeroed(1).ok_or(PagingError::OutOfFrames)?;
    // SAFETY: the frame is freshly allocated, zeroed (a valid empty table),
    // page-aligned and identity-mapped; nothing else refers to it.
    Ok(unsafe { &mut *(addr as *mut PageTable) })
}

/// The page directory covering `addr`, creating missing levels if `create`.
fn page_directory(addr: u64, create: bool) -> Result<&'static mut PageTable, PagingError> {
    let mut table = pml4();
    for shift in [39u32, 30] {
        let entry = &mut table[((addr >> shift) & 511) as usize];
        if entry.is_unused() {
            if !create {
                return Err(PagingError::NotMapped(addr));
            }
            let new = new_table()?;
            entry.set_addr(
                x86_64::PhysAddr::new(new as *mut PageTable as u64),
                F::PRESENT | F::WRITABLE,
            );
        }
        if entry.flags().contains(F::HUGE_PAGE) {
            return Err(PagingError::NotMapped(addr));
        }
        table = next_table(entry.addr().as_u64());
    }
    Ok(table)
}

/// Makes every 2 MiB page of the low 4 GiB for which `has_ram` is false
/// uncached (it is MMIO), and unmaps the page at address 0.
pub fn init(has_ram: impl Fn(u64, u64) -> bool) -> Result<(), PagingError> {
    assert!(!FROZEN.load(Ordering::Relaxed));
    let _guard = LOCK.lock();
    for gib in 0..4u64 {
        let pd = page_directory(gib << 30, false)?;
        for (i, entry) in pd.iter_mut().enumerate() {
            let start = (gib << 30) + i as u64 * SIZE_2M;
            if !has_ram(start, start + SIZE_2M) && entry.flags().contains(F::HUGE_PAGE) {
                let flags = entry.flags() | F::NO_CACHE | F::WRITE_THROUGH;
                entry.set_flags(flags);
            }
        }
    }
    tlb::flush_all();
    drop(_guard);
    unmap_page(0)
}

/// Splits the 2 MiB page holding `addr` into 512 4 KiB pages with the same
/// flags; returns the page table. Caller holds `LOCK`.
fn split(addr: u64) -> Result<&'static mut PageTable, PagingError> {
    let pd = page_directory(addr, false)?;
    let entry = &mut pd[((addr >> 21) & 511) as usize];
    if entry.is_unused() {
        return Err(PagingError::NotMapped(addr));
    }
    if !entry.flags().contains(F::HUGE_PAGE) {
        return Ok(next_table(entry.addr().as_u64()));
    }
    let base = entry.addr().as_u64();
    let flags = entry.flags() - F::HUGE_PAGE;
    let pt = new_table()?;
    for (i, pte) in pt.iter_mut().enumerate() {
        pte.set_addr(x86_64::PhysAddr::new(base + i as u64 * SIZE_4K), flags);
    }
    // The new 4 KiB translations equal the old 2 MiB one, so stale TLB
    // entries stay correct until they are flushed.
    entry.set_addr(
        x86_64::PhysAddr::new(pt as *mut PageTable as u64),
        F::PRESENT | F::WRITABLE,
    );
    Ok(pt)
}

/// Unmaps the 4 KiB page at `addr` (a guard page). Only before the APs start.
pub fn unmap_page(addr: u64) -> Result<(), PagingError> {
    assert!(
        !FROZEN.load(Ordering::Relaxed),
        "unmap_page after the APs started (no TLB shootdown)"
    );
    let _guard = LOCK.lock();
    let pt = split(addr)?;
    pt[((addr >> 12) & 511) as usize].set_unused();
    tlb::flush(VirtAddr::new(addr));
    Ok(())
}

/// Forbids further removals (the APs are about to start).
pub fn freeze() {
    FROZEN.store(true, Ordering::Relaxed);
}

/// Identity-maps `[phys, phys + len)` as uncached MMIO with 2 MiB pages where
/// it is not mapped yet (the low 4 GiB always are).
pub fn map_mmio(phys: u64, len: u64) -> Result<(), PagingError> {
    let _guard = LOCK.lock();
    let mut addr = phys & !(SIZE_2M - 1);
    while addr < phys + len {
        let pd = page_directory(addr, true)?;
        let entry = &mut pd[((addr >> 21) & 511) as usize];
        if entry.is_unused() {
            entry.set_addr(
                x86_64::PhysAddr::new(addr),
                F::PRESENT | F::WRITABLE | F::HUGE_PAGE | F::NO_CACHE | F::WRITE_THROUGH,
            );
        }
        addr += SIZE_2M;
    }
    Ok(())
}
