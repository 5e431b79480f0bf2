//! The AP start-up trampoline: 16-bit real-mode code that a SIPI starts at
//! [`BASE`] (vector `BASE >> 12`). It is assembled into the kernel image and
//! copied below 1 MiB by [`install`]. It walks the AP through protected mode
//! into long mode on the BSP's page tables, takes a ticket (the AP's CPU index
//! minus one), switches to that ticket's stack and calls the Rust AP entry
//! with the ticket. A ticket beyond the prepared stacks halts the AP.

use core::ptr::addr_of;

/// Physical address the trampoline runs at (page-aligned, below 1 MiB).
pub const BASE: u64 = 0x8000;
/// SIPI vector: the page number of [`BASE`].
pub const SIPI_VECTOR: u8 = (BASE >> 12) as u8;

core::arch::global_asm!(
    r#"
    .section .rodata.trampoline, "a"
    .balign 16
    .global ap_tramp_start
ap_tramp_start:
    .code16
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl (0x8000 + ap_tramp_gdt_ptr - ap_tramp_start)
    mov %cr0, %eax
    or $1, %eax                 /* CR0.PE */
    mov %eax, %cr0
    ljmpl $0x08, $(0x8000 + ap_tramp_pm32 - ap_tramp_start)

    .code32
ap_tramp_pm32:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %cr4, %eax
    or $0x20, %eax              /* CR4.PAE */
    mov %eax, %cr4
    mov (0x8000 + ap_tramp_cr3 - ap_tramp_start), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx       /* IA32_EFER */
    rdmsr
    or $0x100, %eax             /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax        /* CR0.PG */
    mov %eax, %cr0
    ljmp $0x18, $(0x8000 + ap_tramp_lm64 - ap_tramp_start)

    .code64
ap_tramp_lm64:
    mov $1, %eax
    lock xadd %eax, (0x8000 + ap_tramp_ticket - ap_tramp_start)
    cmp (0x8000 + ap_tramp_nstacks - ap_tramp_start), %eax
    jae 2f
    mov (0x8000 + ap_tramp_stacks - ap_tramp_start), %rbx
    mov (%rbx,%rax,8), %rsp
    mov %eax, %edi              /* arg 1: ticket */
    xor %ebp, %ebp
    mov (0x8000 + ap_tramp_entry - ap_tramp_start), %rax
    call *%rax
2:  cli
    hlt
    jmp 2b

    .balign 8
ap_tramp_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
    .quad 0x00af9a000000ffff    /* 0x18: 64-bit code */
ap_tramp_gdt_ptr:
    .word ap_tramp_gdt_ptr - ap_tramp_gdt - 1
    .long 0x8000 + ap_tramp_gdt - ap_tramp_start
    .balign 8
    .global ap_tramp_cr3, ap_tramp_stacks, ap_tramp_nstacks, ap_tramp_ticket, ap_tramp_entry
ap_tramp_cr3:
    .quad 0                     /* BSP's CR3 (below 4 GiB) */
ap_tramp_stacks:
    .quad 0                     /* address of an array of stack tops, one per ticket */
ap_tramp_entry:
    .quad 0                     /* extern "C" fn(ticket: u32) -> ! */
ap_tramp_nstacks:
    .long 0                     /* number of stack tops */
ap_tramp_ticket:
    .long 0                     /* next ticket */
    .global ap_tramp_end
ap_tramp_end:
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_tramp_start: u8;
    static ap_tramp_end: u8;
    static ap_tramp_cr3: u8;
    static ap_tramp_stacks: u8;
    static ap_tramp_entry: u8;
    static ap_tramp_nstacks: u8;
    static ap_tramp_ticket: u8;
}

/// Where the trampoline's parameter `sym` lives once copied to [`BASE`].
fn param(sym: *const u8) -> *mut u8 {
    let start = addr_of!(ap_tramp_start) as u64;
    (BASE + (sym as u64 - start)) as *mut u8
}

/// Copies the trampoline to [`BASE`] and fills in its parameters.
///
/// # Safety
/// `BASE..BASE + len` must be identity-mapped RAM that nothing else uses (the
/// frame allocator never hands out memory below 1 MiB), no AP may be running
/// the trampoline, `cr3` must be below 4 GiB, `stacks` must point to `n`
/// valid stack tops that stay valid, and `entry` must be an `extern "C"`
/// function taking the ticket that never returns.
pub unsafe fn install(cr3: u64, stacks: *const u64, n: u32, entry: extern "C" fn(u32) -> !) {
    let start = addr_of!(ap_tramp_start);
    let len = addr_of!(ap_tramp_end) as usize - start as usize;
    assert!(len <= 4096 && cr3 < (1 << 32));
    // SAFETY: see the function contract: the destination is free RAM below
    // 1 MiB, the source is the trampoline in the kernel image; the parameter
    // slots are 8-byte aligned (`.balign 8`) and lie inside the copied range.
    unsafe {
        core::ptr::copy_nonoverlapping(start, BASE as *mut u8, len);
        (param(addr_of!(ap_tramp_cr3)) as *mut u64).write_volatile(cr3);
        (param(addr_of!(ap_tramp_stacks)) as *mut u64).write_volatile(stacks as u64);
        (param(addr_of!(ap_tramp_entry)) as *mut u64).write_volatile(entry as usize as u64);
        (param(addr_of!(ap_tramp_nstacks)) as *mut u32).write_volatile(n);
        (param(addr_of!(ap_tramp_ticket)) as *mut u32).write_volatile(0);
    }
}
