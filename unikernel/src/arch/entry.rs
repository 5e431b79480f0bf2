//! The PVH entry point: QEMU enters `pvh_start32` (named by the Xen ELF note
//! `XEN_ELFNOTE_PHYS32_ENTRY`) in 32-bit protected mode with paging off and
//! `ebx` = physical address of the `hvm_start_info`. This code builds the boot
//! page tables (an identity map of the low 4 GiB with 2 MiB pages: 1 GiB pages
//! triple-fault under this machine's nested KVM), enters long mode on a small
//! boot stack and calls `arch::boot::kernel_boot` with the start-info
//! address and the TSC value read at entry.
//!
//! The boot page tables stay the kernel's page tables for good; `paging`
//! refines them (uncached MMIO, 4 KiB splits for guard pages) later.

core::arch::global_asm!(
    r#"
    .section .note.Xen, "a", @note
    .balign 4
    .long 4                     /* namesz: "Xen\0" */
    .long 4                     /* descsz: a 32-bit entry address */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi              /* hvm_start_info (kept in esi) */
    rdtsc
    mov %eax, %edi              /* entry TSC, low half */
    mov %edx, %ebp              /* entry TSC, high half */

    /* PML4[0] -> PDPT */
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4

    /* PDPT[0..4] -> the four page directories */
    mov $boot_pd, %eax
    or $0x3, %eax
    xor %ecx, %ecx
1:  mov %eax, boot_pdpt(,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $4, %ecx
    jb 1b

    /* PD entries: 2048 x 2 MiB, present | writable | page size */
    mov $0x83, %eax
    xor %ecx, %ecx
2:  mov %eax, boot_pd(,%ecx,8)
    add $0x200000, %eax
    inc %ecx
    cmp $2048, %ecx
    jb 2b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax              /* CR4.PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx       /* IA32_EFER */
    rdmsr
    or $0x100, %eax             /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax        /* CR0.PG | CR0.PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $pvh_start64

    .code64
pvh_start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %rsp
    mov %esi, %r8d              /* start info (zero-extended) */
    mov %edi, %eax
    shl $32, %rbp
    or %rbp, %rax
    mov %rax, %rsi              /* arg 2: entry TSC */
    mov %r8, %rdi               /* arg 1: start info */
    xor %ebp, %ebp              /* end of the frame-pointer chain */
    call kernel_boot
3:  hlt
    jmp 3b

    .section .rodata.boot_gdt, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
boot_stack:
    .skip 64 * 1024
boot_stack_top:
"#,
    options(att_syntax)
);
