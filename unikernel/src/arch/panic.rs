//! Fatal errors: Rust panics and CPU exceptions end in one `Record::Panic`
//! (with `exception` filled for CPU exceptions, `stack_guard` when the fault
//! address lies in a stack guard page) and exit with `ExitCode::Panic`.
//!
//! Only the first CPU to fail reports; any other CPU that fails meanwhile
//! halts (the reporter exits QEMU). A fault while reporting exits at once
//! with a bare diagnostic. If the heap is unusable (the fault hit inside the
//! allocator), the report degrades to a `# ` line written without allocating.

use alloc::string::ToString;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

use stress::proto::{Exception, ExitCode, Record};
use x86_64::instructions::{hlt, interrupts};
use x86_64::registers::control::Cr2;

use crate::arch::idt::{self, TrapFrame};
use crate::arch::sync::FatalPath;
use crate::arch::{cpu, qemu};
use crate::console;
use crate::mem::{heap, stack};

/// Index of the CPU that is reporting, or `usize::MAX`.
static REPORTER: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Claims the right to report; returns only on the first failing CPU.
fn claim() -> FatalPath {
    interrupts::disable();
    let me = cpu::id();
    match REPORTER.compare_exchange(usize::MAX, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => FatalPath::claimed(),
        Err(cpu) if cpu == me => {
            let mut console = console::emergency(&FatalPath::claimed());
            console.raw(b"\n# nested fault while reporting a panic\n");
            console.flush();
            qemu::exit_now(ExitCode::Panic);
        }
        Err(_) => loop {
            hlt();
        },
    }
}

/// An exception as captured, before anything is allocated.
struct Captured {
    vector: u8,
    name: &'static str,
    error_code: Option<u64>,
    rip: u64,
    rsp: u64,
    cr2: Option<u64>,
    stack_guard: bool,
}

impl Captured {
    fn to_record(&self) -> Exception {
        Exception {
            vector: self.vector,
            name: self.name.to_string(),
            error_code: self.error_code,
            rip: self.rip,
            rsp: self.rsp,
            cr2: self.cr2,
            stack_guard: self.stack_guard,
        }
    }
}

/// Prints the Panic record for `message` and exits with `ExitCode::Panic`.
fn report(message: fmt::Arguments, exception: Option<&Captured>) -> ! {
    let path = claim();
    let me = cpu::id() as u32;
    if heap::usable() {
        let rec = Record::Panic {
            cpu: me,
            message: alloc::fmt::format(message),
            exception: exception.map(Captured::to_record),
        };
        let mut console = console::emergency(&path);
        console.record(rec);
        console.flush();
    } else {
        let mut console = console::emergency(&path);
        let _ = write!(console, "# panic on cpu {me} (heap unusable): {message}");
        console.raw(b"\n");
        console.flush();
    }
    qemu::exit_now(ExitCode::Panic)
}

/// Reports a fatal error with a clean message (no panic location) and exits.
pub fn fatal(message: fmt::Arguments) -> ! {
    report(message, None)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    report(format_args!("{info}"), None)
}

/// A CPU exception (vectors 0-31): always fatal.
pub fn exception(frame: &TrapFrame) -> ! {
    let vector = frame.vector as u8;
    let name = idt::exception_name(vector);
    let cr2 = Cr2::read_raw();
    // An overflow into a guard page raises #PF, whose delivery faults again
    // (no stack left): #DF on the IST stack, with CR2 = the guard address.
    let guard = match vector {
        14 | 8 => stack::guard_hit(cr2),
        _ => None,
    };
    let exception = Captured {
        vector,
        name,
        error_code: idt::has_error_code(vector).then_some(frame.error_code),
        rip: frame.rip,
        rsp: frame.rsp,
        cr2: (vector == 14 || guard.is_some()).then_some(cr2),
        stack_guard: guard.is_some(),
    };
    match (vector, guard) {
        (_, Some((cpu, which))) => report(
            format_args!(
                "{name} at rip {:#x}: access to {cr2:#x} in the guard page of cpu {cpu}'s {which} stack (stack overflow)",
                frame.rip
            ),
            Some(&exception),
        ),
        (14, None) => report(
            format_args!(
                "{name} at rip {:#x}: access to {cr2:#x} (error code {:#x})",
                frame.rip, frame.error_code
            ),
            Some(&exception),
        ),
        _ if idt::has_error_code(vector) => report(
            format_args!(
                "{name} at rip {:#x} (error code {:#x})",
                frame.rip, frame.error_code
            ),
            Some(&exception),
        ),
        _ => report(
            format_args!("{name} at rip {:#x}", frame.rip),
            Some(&exception),
        ),
    }
}
