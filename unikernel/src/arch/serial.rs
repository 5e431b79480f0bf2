//! COM1, the 16550 UART at I/O port 0x3f8 (QEMU `-serial stdio`): raw byte
//! output for [`crate::console`], which owns the only instance.

use uart_16550::spec::registers::LSR;
use uart_16550::{BaudRate, Config, Uart16550, backend::PioBackend};

/// The COM1 UART.
pub struct Serial {
    uart: Uart16550<PioBackend>,
    ready: bool,
}

impl Serial {
    /// COM1, not yet initialised (writes are dropped until [`Serial::init`]).
    pub const fn com1() -> Serial {
        // SAFETY: 0x3f8..0x400 are COM1's registers on every PC-compatible
        // machine QEMU emulates (microvm, pc, q35); the console owns the only
        // `Serial`, so nothing else drives these ports.
        let uart = match unsafe { Uart16550::new_port(0x3f8) } {
            Ok(uart) => uart,
            Err(_) => panic!("0x3f8 is a valid port base"),
        };
        Serial { uart, ready: false }
    }

    /// Programs 115200 8N1 with FIFOs, polled (no interrupts).
    pub fn init(&mut self) {
        let config = Config {
            baud_rate: BaudRate::Baud115200,
            ..Config::DEFAULT
        };
        self.ready = self.uart.init(config).is_ok();
    }

    /// Sends all of `bytes`, waiting for room in the transmit FIFO.
    pub fn write(&mut self, bytes: &[u8]) {
        if self.ready {
            self.uart.send_bytes_exact(bytes);
        }
    }

    /// Waits (bounded) until the UART has handed every byte on, so that an
    /// exit right after does not drop the tail of the output.
    pub fn flush(&mut self) {
        if !self.ready {
            return;
        }
        for _ in 0..1_000_000 {
            if self.uart.lsr().contains(LSR::TRANSMITTER_EMPTY) {
                return;
            }
            core::hint::spin_loop();
        }
    }
}
