//! The IDT and the trap entry stubs for all 256 vectors.
//!
//! Every vector has a 16-byte stub (`trap_stubs + 16 * vector`) that pushes a
//! zero error code when the CPU pushes none, then the vector number, and jumps
//! to `trap_common`. That saves the caller-saved registers (the Rust handler
//! preserves the rest), calls [`trap_dispatch`] with a [`TrapFrame`], restores
//! and `iretq`s. Vectors 0-31 are CPU exceptions and go to
//! [`crate::arch::panic::exception`] (which never returns); the double fault runs on
//! its own IST stack. Higher vectors are interrupts ([`crate::arch::irq::dispatch`]).
//!
//! The IDT is hand-built rather than taken from the `x86_64` crate because that
//! one cannot point its reserved exception vectors anywhere and expects the
//! unstable `x86-interrupt` ABI for typed handlers.

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use super::gdt::DOUBLE_FAULT_IST;

core::arch::global_asm!(
    r#"
    .section .text.trap, "ax"
    .code64
    .balign 16
    .global trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push $0
    .endif
    push $vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov %rsp, %rdi
    cld
    call trap_dispatch
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $16, %rsp               /* vector and error code */
    iretq
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static trap_stubs: u8;
}

/// Byte distance between two trap stubs.
const STUB_SIZE: u64 = 16;

/// The registers `trap_common` saved, then what the stub and the CPU pushed.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rax: u64,
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// One 64-bit interrupt gate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

impl Gate {
    /// A present, DPL 0 interrupt gate (interrupts stay disabled in handlers).
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: 0x08, // kernel code in both the boot and the per-CPU GDTs
            ist,
            type_attr: 0x8e,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

static IDT: Once<[Gate; 256]> = Once::new();

/// Builds the IDT (once) and loads it on this CPU.
pub fn load() {
    let idt = IDT.call_once(|| {
        let base = core::ptr::addr_of!(trap_stubs) as u64;
        core::array::from_fn(|vector| {
            let ist = if vector == 8 {
                DOUBLE_FAULT_IST as u8 + 1
            } else {
                0
            };
            Gate::interrupt(base + vector as u64 * STUB_SIZE, ist)
        })
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of_val(idt) - 1) as u16,
        base: VirtAddr::from_ptr(idt.as_ptr()),
    };
    // SAFETY: the table lives forever, every gate points at a trap stub in
    // this image, and the double-fault IST slot is set in every CPU's TSS
    // (`gdt::init_current` runs before `load`).
    unsafe { lidt(&pointer) };
}

/// Loads an empty IDT: the next exception or interrupt triple-faults the CPU.
///
/// # Safety
/// Only for `crash kind=triplefault`: the machine resets (QEMU exits).
pub unsafe fn load_empty() {
    let pointer = DescriptorTablePointer {
        limit: 0,
        base: VirtAddr::zero(),
    };
    // SAFETY: the caller wants the CPU to triple-fault on the next event.
    unsafe { lidt(&pointer) };
}

/// Names of the CPU exceptions (vectors 0-31).
pub fn exception_name(vector: u8) -> &'static str {
    match vector {
        0 => "divide error",
        1 => "debug",
        2 => "non-maskable interrupt",
        3 => "breakpoint",
        4 => "overflow",
        5 => "bound range exceeded",
        6 => "invalid opcode",
        7 => "device not available",
        8 => "double fault",
        9 => "coprocessor segment overrun",
        10 => "invalid TSS",
        11 => "segment not present",
        12 => "stack-segment fault",
        13 => "general protection fault",
        14 => "page fault",
        16 => "x87 floating-point exception",
        17 => "alignment check",
        18 => "machine check",
        19 => "SIMD floating-point exception",
        20 => "virtualization exception",
        21 => "control protection exception",
        28 => "hypervisor injection exception",
        29 => "VMM communication exception",
        30 => "security exception",
        _ => "reserved exception",
    }
}

/// True for the exceptions that push an error code.
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Called by `trap_common` for every trap.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    if vector < 32 {
        crate::arch::panic::exception(frame);
    } else {
        crate::arch::irq::dispatch(vector);
    }
}
