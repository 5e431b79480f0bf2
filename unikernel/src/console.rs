//! The console: whole lines on COM1, written under one IRQ-safe lock so that
//! CPUs never interleave inside a line (see `docs/contract.md`).
//!
//! Every line is a record ([`record`], encoded by `stress::proto::encode` with
//! the per-boot `seq` and the writing CPU), a KTAP line ([`ktap`]) or a
//! diagnostic starting with `# ` ([`crate::diag!`]). The panic path uses
//! [`emergency`], which takes the lock even when the panicking CPU held it.

use alloc::string::String;
use core::fmt::{self, Write};

use stress::proto::{self, Frame, Record};

use crate::arch::cpu;
use crate::arch::serial::Serial;
use crate::arch::sync::{self, FatalPath, IrqMutex, IrqMutexGuard};

/// The UART and the record sequence number it has reached.
pub struct Console {
    serial: Serial,
    seq: u64,
}

static CONSOLE: IrqMutex<Console> = IrqMutex::new(Console {
    serial: Serial::com1(),
    seq: 0,
});

/// Programs the UART. Call once, first thing at boot.
pub fn init() {
    CONSOLE.lock().serial.init();
}

impl Console {
    /// Encodes `rec` with the next sequence number and this CPU's index.
    fn encode(&mut self, rec: Record) -> String {
        let frame = Frame {
            seq: self.seq,
            cpu: cpu::id() as u32,
            rec,
        };
        self.seq += 1;
        proto::encode(&frame)
    }

    /// Writes `text` and a newline.
    fn write_line(&mut self, text: &str) {
        self.serial.write(text.as_bytes());
        self.serial.write(b"\n");
    }

    /// Writes a record line.
    pub fn record(&mut self, rec: Record) {
        let line = self.encode(rec);
        self.write_line(&line);
    }

    /// Writes raw bytes (no newline added).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.serial.write(bytes);
    }

    /// Waits until the UART has sent everything.
    pub fn flush(&mut self) {
        self.serial.flush();
    }
}

impl Write for Console {
    /// Raw text, with newlines turned into spaces (for one-line diagnostics).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.split_inclusive(['\n', '\r']) {
            let body = chunk.trim_end_matches(['\n', '\r']);
            self.serial.write(body.as_bytes());
            if body.len() != chunk.len() {
                self.serial.write(b" ");
            }
        }
        Ok(())
    }
}

/// Prints one record line (adds the `seq`/`cpu` envelope).
pub fn record(rec: Record) {
    CONSOLE.lock().record(rec);
}

/// Prints the first half of a record line and no newline (for `crash kind=cut`).
pub fn record_cut(rec: Record) {
    let mut console = CONSOLE.lock();
    let line = console.encode(rec);
    let half = line.len() / 2;
    console.raw(&line.as_bytes()[..half]);
}

/// Prints one KTAP line (made with `stress::ktap`).
pub fn ktap(line: &str) {
    CONSOLE.lock().write_line(line);
}

/// Prints a `# ` diagnostic line; newlines in the text become spaces.
pub fn diag_fmt(args: fmt::Arguments) {
    let mut console = CONSOLE.lock();
    let _ = console.write_str("# ");
    let _ = console.write_fmt(args);
    console.serial.write(b"\n");
}

/// Prints raw bytes, no newline (for `crash kind=garbage`).
pub fn raw(bytes: &[u8]) {
    CONSOLE.lock().raw(bytes);
}

/// Waits until the UART has sent everything written so far.
pub fn flush() {
    CONSOLE.lock().flush();
}

/// Prints a `# ` diagnostic line: `diag!("cpu {} is late", n)`.
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::console::diag_fmt(format_args!($($arg)*))
    };
}

/// The console for the panic path: taken even if this CPU held it when it
/// faulted (the interrupted line is cut: a newline is written first), and
/// taken by force if another CPU does not release it within a bounded wait.
pub fn emergency(path: &FatalPath) -> IrqMutexGuard<'static, Console> {
    let (mut console, held_here) = sync::lock_on_fatal_path(&CONSOLE, path);
    if held_here {
        console.serial.write(b"\n");
    }
    console
}
