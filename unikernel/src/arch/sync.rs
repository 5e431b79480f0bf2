//! IRQ-safe spinlocks: [`IrqMutex`] is a `spin` mutex that keeps local
//! interrupts disabled while it is held, so an interrupt handler on the same
//! CPU can never spin on a lock its own CPU already holds.
//!
//! The raw lock ([`IrqRawMutex`]) implements `lock_api::RawMutex`, which also
//! makes it usable under `talc` (the heap) and any other `lock_api` user. It
//! remembers the interrupt flag of the CPU that took it and restores it on
//! unlock, so nested locks (taken and released in LIFO order) compose. It also
//! records the owning CPU, which the panic path uses to avoid deadlocking on a
//! lock that the panicking CPU itself holds.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use lock_api::{GuardNoSend, RawMutex};
use x86_64::instructions::interrupts;

use crate::arch::cpu;

/// Owner value meaning "nobody".
const NO_OWNER: u32 = u32::MAX;

/// A `spin` raw mutex that disables interrupts while held.
pub struct IrqRawMutex {
    inner: spin::mutex::SpinMutex<()>,
    /// The interrupt flag of the holder before it took the lock.
    saved_if: AtomicBool,
    /// CPU index of the holder, or [`NO_OWNER`].
    owner: AtomicU32,
}

// SAFETY: the lock is a correct mutual-exclusion primitive: `lock`/`try_lock`
// only return once the inner spin mutex is held, and `unlock` releases it.
// Guards must stay on their CPU (`GuardNoSend`): unlocking restores the
// interrupt flag saved on the CPU that locked.
unsafe impl RawMutex for IrqRawMutex {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = IrqRawMutex {
        inner: spin::mutex::SpinMutex::new(()),
        saved_if: AtomicBool::new(false),
        owner: AtomicU32::new(NO_OWNER),
    };

    type GuardMarker = GuardNoSend;

    fn lock(&self) {
        loop {
            if self.try_lock() {
                return;
            }
            while self.inner.is_locked() {
                core::hint::spin_loop();
            }
        }
    }

    fn try_lock(&self) -> bool {
        let was_enabled = interrupts::are_enabled();
        interrupts::disable();
        match self.inner.try_lock() {
            Some(guard) => {
                // The guard is "leaked" here and released in `unlock`.
                core::mem::forget(guard);
                self.saved_if.store(was_enabled, Ordering::Relaxed);
                self.owner.store(cpu::id() as u32, Ordering::Relaxed);
                true
            }
            None => {
                if was_enabled {
                    interrupts::enable();
                }
                false
            }
        }
    }

    unsafe fn unlock(&self) {
        let restore = self.saved_if.load(Ordering::Relaxed);
        self.owner.store(NO_OWNER, Ordering::Relaxed);
        // SAFETY: the caller (lock_api) guarantees the lock is held by this
        // context, so the leaked guard of `try_lock` is ours to release.
        unsafe { self.inner.force_unlock() };
        if restore {
            interrupts::enable();
        }
    }

    fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

impl IrqRawMutex {
    /// True when the current CPU holds this lock.
    pub fn held_by_current_cpu(&self) -> bool {
        self.inner.is_locked() && self.owner.load(Ordering::Relaxed) == cpu::id() as u32
    }
}

/// Proof that the current CPU is the one reporting a fatal error and that it
/// ends by exiting QEMU: it never returns to the code it interrupted. Only
/// [`crate::arch::panic`] makes one, on the first failing CPU.
pub struct FatalPath {
    _private: (),
}

impl FatalPath {
    /// For [`crate::arch::panic`] once it has claimed the report.
    pub(in crate::arch) fn claimed() -> FatalPath {
        FatalPath { _private: () }
    }
}

/// Takes `mutex` on the fatal path even when it is not free: released by
/// force when this CPU holds it (the interrupted holder never resumes), or
/// when another CPU does not release it within a bounded wait (it is stuck,
/// e.g. spinning with interrupts off; a possibly interleaved line is better
/// than a silent hang). Also says whether this CPU held it.
pub fn lock_on_fatal_path<'a, T>(
    mutex: &'a IrqMutex<T>,
    _path: &FatalPath,
) -> (IrqMutexGuard<'a, T>, bool) {
    // SAFETY: `raw` only exposes the lock for inspection here.
    let held_here = unsafe { mutex.raw() }.held_by_current_cpu();
    if held_here {
        // SAFETY: this CPU holds the lock and, as the `FatalPath` proves, will
        // never return to the code that took it, so releasing it here cannot
        // let two contexts use the protected value at once.
        unsafe { mutex.force_unlock() };
        return (mutex.lock(), true);
    }
    for _ in 0..50_000_000u64 {
        if let Some(guard) = mutex.try_lock() {
            return (guard, false);
        }
        core::hint::spin_loop();
    }
    // SAFETY: another CPU has held the lock far longer than any holder takes
    // and this CPU is about to exit QEMU (`FatalPath`); no value the lock
    // protects outlives the exit, so the forced release harms nothing that
    // runs afterwards.
    unsafe { mutex.force_unlock() };
    (mutex.lock(), false)
}

/// A mutex that keeps interrupts disabled on its CPU while held.
pub type IrqMutex<T> = lock_api::Mutex<IrqRawMutex, T>;
/// Guard of an [`IrqMutex`].
pub type IrqMutexGuard<'a, T> = lock_api::MutexGuard<'a, IrqRawMutex, T>;
