//! Typed I/O ports (after Asterinas' `IoPort`): creating an [`IoPort`] is the
//! unsafe step, where the creator vouches for what the port is; reading and
//! writing it afterwards are safe.

use core::marker::PhantomData;

use x86_64::instructions::port::{Port, PortRead, PortWrite};

/// An I/O port of width `T` (`u8`, `u16` or `u32`).
pub struct IoPort<T> {
    port: u16,
    width: PhantomData<T>,
}

impl<T: PortRead + PortWrite> IoPort<T> {
    /// A handle on port `port`.
    ///
    /// # Safety
    /// `port` must be the device register the creator names, of width `T`,
    /// and no read or write of it through this handle — of any value the
    /// owner's safe API lets through — may break memory safety (e.g. by
    /// remapping memory the kernel uses, or by starting DMA into it). The
    /// owner must also keep accesses that form a sequence (an address/data
    /// pair, a latch then two reads) from interleaving with other users.
    pub const unsafe fn new(port: u16) -> IoPort<T> {
        IoPort {
            port,
            width: PhantomData,
        }
    }

    /// Reads the port.
    pub fn read(&self) -> T {
        // SAFETY: `new`'s contract: reading this port is memory-safe.
        unsafe { Port::<T>::new(self.port).read() }
    }

    /// Writes `value` to the port.
    pub fn write(&self, value: T) {
        // SAFETY: `new`'s contract: writing this port is memory-safe.
        unsafe { Port::<T>::new(self.port).write(value) }
    }
}
