//! Interrupts (vectors 32-255): the local APIC timer, the wake-up IPI, APIC
//! error and spurious interrupts. The legacy 8259 PICs are remapped to
//! vectors 0x20-0x2f and fully masked, so only a spurious PIC interrupt can
//! arrive there; it is ignored. Devices are polled: no I/O APIC routing.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::port::IoPort;
use crate::arch::{apic, time};

/// Interrupts on vectors nobody expects (acknowledged and counted).
pub static UNEXPECTED: AtomicU64 = AtomicU64::new(0);

/// Remaps the 8259 PICs to vectors 0x20-0x2f and masks every line.
pub fn disable_legacy_pic() {
    let [master_cmd, master_data, slave_cmd, slave_data] = [0x20, 0x21, 0xa0, 0xa1].map(|p| {
        // SAFETY: the 8259 PICs' command and data ports on every machine QEMU
        // emulates; a PIC only raises interrupts (on vectors that have IDT
        // gates), never touches memory; only the BSP programs them, once.
        unsafe { IoPort::<u8>::new(p) }
    });
    // The standard initialisation sequence (ICW1-ICW4), then all lines
    // masked: afterwards the PICs deliver nothing but possibly a spurious
    // vector 0x27/0x2f, which `dispatch` ignores.
    master_cmd.write(0x11);
    slave_cmd.write(0x11);
    master_data.write(0x20);
    slave_data.write(0x28);
    master_data.write(0x04);
    slave_data.write(0x02);
    master_data.write(0x01);
    slave_data.write(0x01);
    master_data.write(0xff);
    slave_data.write(0xff);
}

/// Handles interrupt `vector` (called from the trap entry, interrupts off).
pub fn dispatch(vector: u8) {
    match vector {
        apic::TIMER_VECTOR => {
            time::on_tick();
            apic::end_of_interrupt();
        }
        apic::WAKE_VECTOR | apic::ERROR_VECTOR => apic::end_of_interrupt(),
        apic::SPURIOUS_VECTOR | 0x20..=0x2f => {}
        _ => {
            UNEXPECTED.fetch_add(1, Ordering::Relaxed);
            apic::end_of_interrupt();
        }
    }
}
