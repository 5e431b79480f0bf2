//! Sleepable locks of the model: every contended acquire goes through the
//! model's wait loop (so the watchdog sees what a CPU waits on, a stopped run
//! unwinds, and controlled schedulers get their scheduling points).
//!
//! `Lock<T>` stands for FreeBSD's object lock (`VM_OBJECT_WLOCK`) and other
//! mutexes; `SxLock<T>` for the `sx` lock of a user map (`vm_map_lock`), with
//! writer preference so that a forking thread is not starved by faults.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::platform::Platform;
use crate::vm::{Res, Td, Vm, Wait};

pub use spin::MutexGuard;
pub use spin::rwlock::{RwLockReadGuard, RwLockWriteGuard};

/// A mutex whose waiters sleep in the model's wait loop.
pub struct Lock<T> {
    inner: spin::Mutex<T>,
}

impl<T> Lock<T> {
    /// An unlocked lock around `v`.
    pub const fn new(v: T) -> Self {
        Lock {
            inner: spin::Mutex::new(v),
        }
    }

    /// Takes the lock, waiting as `w` while another CPU holds it.
    pub fn lock<P: Platform>(&self, vm: &Vm<P>, td: &Td, w: Wait) -> Res<MutexGuard<'_, T>> {
        vm.p.preempt();
        vm.wait_for(td, w, || self.inner.try_lock())
    }

    /// Takes the lock only if it is free (FreeBSD's `TRYLOCK`).
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.inner.try_lock()
    }

    /// Takes the lock outside any run (setup, reports, tests): spins.
    pub fn lock_now(&self) -> MutexGuard<'_, T> {
        self.inner.lock()
    }
}

/// A shared/exclusive lock with writer preference.
pub struct SxLock<T> {
    inner: spin::RwLock<T>,
    writers_waiting: AtomicU32,
}

impl<T> SxLock<T> {
    /// An unlocked lock around `v`.
    pub const fn new(v: T) -> Self {
        SxLock {
            inner: spin::RwLock::new(v),
            writers_waiting: AtomicU32::new(0),
        }
    }

    /// Shared lock; new readers wait while a writer is waiting.
    pub fn read<P: Platform>(&self, vm: &Vm<P>, td: &Td, w: Wait) -> Res<RwLockReadGuard<'_, T>> {
        vm.p.preempt();
        vm.wait_for(td, w, || self.try_read())
    }

    /// Shared lock only if no writer holds or waits for it (`vm_map_trylock_read`).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if self.writers_waiting.load(Ordering::Acquire) != 0 {
            return None;
        }
        self.inner.try_read()
    }

    /// Exclusive lock.
    pub fn write<P: Platform>(&self, vm: &Vm<P>, td: &Td, w: Wait) -> Res<RwLockWriteGuard<'_, T>> {
        vm.p.preempt();
        if let Some(g) = self.inner.try_write() {
            return Ok(g);
        }
        self.writers_waiting.fetch_add(1, Ordering::AcqRel);
        let r = vm.keep_trying(td, w, || self.inner.try_write());
        self.writers_waiting.fetch_sub(1, Ordering::AcqRel);
        r
    }

    /// Shared lock outside any run: spins.
    pub fn read_now(&self) -> RwLockReadGuard<'_, T> {
        self.inner.read()
    }
}
