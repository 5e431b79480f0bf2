//! CPU identity: every CPU's index (0 = the BSP, then the APs in the order they
//! checked in), its local APIC id, and how many CPUs are online.
//!
//! Each CPU's `GS` base points at its own [`Header`] so that [`id`] is a single
//! `gs`-relative load, cheap enough for the model's hot paths. Per-CPU values
//! of other types live in [`CpuLocal`] slots indexed by [`id`].

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use x86_64::VirtAddr;
use x86_64::registers::model_specific::GsBase;

/// Most CPUs the kernel will run on (extra MADT entries are ignored).
pub const MAX_CPUS: usize = 64;

/// What `GS` points at on each CPU.
#[repr(C)]
#[derive(Clone, Copy)]
struct Header {
    /// The CPU index; read by [`id`] at `gs:[0]`.
    index: usize,
}

static HEADERS: [Header; MAX_CPUS] = {
    let mut headers = [Header { index: 0 }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        headers[i].index = i;
        i += 1;
    }
    headers
};

/// Local APIC id of each CPU index (valid for online CPUs).
static APIC_IDS: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(u32::MAX) }; MAX_CPUS];
/// Number of CPUs that checked in.
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// Index of the CPU running this code: 0 for the BSP, 1.. for the APs.
#[inline]
pub fn id() -> usize {
    let index: usize;
    // SAFETY: `bind_current` set this CPU's GS base to its `Header` before any
    // code that can call `id` ran (it is the first thing the BSP and every AP
    // do), and `Header.index` is at offset 0. The load has no side effects.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) index, options(nostack, readonly, preserves_flags));
    }
    index
}

/// Number of CPUs online (checked in); indices are `0..count()`.
pub fn count() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Local APIC id of CPU `index`.
pub fn apic_id(index: usize) -> u32 {
    APIC_IDS[index].load(Ordering::Relaxed)
}

/// Makes this CPU's [`id`] return `index`.
///
/// # Safety
/// Must be called once per CPU, first thing on that CPU, with an index no
/// other CPU uses.
pub unsafe fn bind_current(index: usize) {
    assert!(index < MAX_CPUS);
    GsBase::write(VirtAddr::from_ptr(&HEADERS[index]));
}

/// Records the local APIC id of CPU `index` (once its APIC is up).
pub fn set_apic_id(index: usize, apic_id: u32) {
    APIC_IDS[index].store(apic_id, Ordering::Relaxed);
}

/// Records that `n` CPUs are online (called by the SMP bring-up).
pub(crate) fn set_online(n: usize) {
    ONLINE.store(n, Ordering::Release);
}

/// An optional value per CPU, created by and only ever touched by its own CPU,
/// with interrupts disabled (e.g. the CPU's local APIC handle).
pub struct CpuLocal<T> {
    slots: [UnsafeCell<Option<T>>; MAX_CPUS],
    busy: [AtomicBool; MAX_CPUS],
}

// SAFETY: slot `i` is only accessed by CPU `i` (see `with`), with interrupts
// disabled and a re-entrancy guard, so no two contexts ever access one slot at
// the same time. Slots start as `None` and are filled on their own CPU, so a
// `T` never crosses CPUs and need not be `Send`.
unsafe impl<T> Sync for CpuLocal<T> {}

impl<T> CpuLocal<T> {
    /// Creates empty slots.
    pub const fn new() -> Self {
        CpuLocal {
            slots: [const { UnsafeCell::new(None) }; MAX_CPUS],
            busy: [const { AtomicBool::new(false) }; MAX_CPUS],
        }
    }

    /// Runs `f` on the current CPU's slot with interrupts disabled.
    ///
    /// Panics if `f` re-enters `with` on the same `CpuLocal`.
    pub fn with<R>(&self, f: impl FnOnce(&mut Option<T>) -> R) -> R {
        x86_64::instructions::interrupts::without_interrupts(|| {
            let me = id();
            assert!(
                !self.busy[me].swap(true, Ordering::Acquire),
                "CpuLocal::with re-entered"
            );
            // SAFETY: only this CPU touches its slot, interrupts are off so no
            // handler on this CPU runs meanwhile, and the busy flag rules out
            // re-entrance from `f`: this is the only reference to the slot.
            let slot = unsafe { &mut *self.slots[me].get() };
            let r = f(slot);
            self.busy[me].store(false, Ordering::Release);
            r
        })
    }
}

impl<T> Default for CpuLocal<T> {
    fn default() -> Self {
        Self::new()
    }
}
