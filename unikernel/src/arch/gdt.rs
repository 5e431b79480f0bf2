//! Per-CPU GDT and TSS. Every CPU gets its own TSS (its double-fault IST stack
//! differs) and therefore its own GDT; both are leaked heap objects that live
//! as long as the kernel.

use alloc::boxed::Box;

use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (0-based index into the TSS table, i.e. IST1) used by the
/// double-fault handler, so that a kernel stack overflow can still be reported.
pub const DOUBLE_FAULT_IST: u16 = 0;

/// Builds and loads this CPU's GDT and TSS; `df_stack_top` becomes IST1.
pub fn init_current(df_stack_top: u64) {
    let mut tss = TaskStateSegment::new();
    tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = VirtAddr::new(df_stack_top);
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));

    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_sel = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded: a 64-bit kernel code
    // segment, a flat data segment and an available TSS that lives forever.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_sel);
    }
}
