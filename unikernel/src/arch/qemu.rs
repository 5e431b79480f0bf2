//! Leaving QEMU through its `isa-debug-exit` device (I/O port 0xf4): writing
//! byte `v` makes QEMU exit with status `(v << 1) | 1`.

use stress::proto::ExitCode;
use x86_64::instructions::{hlt, interrupts};

use crate::arch::port::IoPort;

/// The `isa-debug-exit` port (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
// SAFETY: port 0xf4 is QEMU's isa-debug-exit device; writing it ends the VM,
// which touches no memory. Without the device (a misconfigured command line)
// writes are ignored.
static DEBUG_EXIT: IoPort<u32> = unsafe { IoPort::new(0xf4) };

/// Flushes the console and exits QEMU with `code`.
pub fn exit(code: ExitCode) -> ! {
    crate::console::flush();
    exit_now(code)
}

/// Exits QEMU with `code` without touching the console (the panic path has
/// flushed it already, through the guard it holds).
pub fn exit_now(code: ExitCode) -> ! {
    interrupts::disable();
    DEBUG_EXIT.write(code as u32);
    // Without the device the write was ignored: halt for good.
    loop {
        hlt();
    }
}
