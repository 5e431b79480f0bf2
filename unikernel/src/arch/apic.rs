//! Each CPU's local APIC, through the `x2apic` crate: x2APIC (MSR) mode when
//! CPUID offers it, xAPIC (MMIO at the MADT's address) otherwise — QEMU 7.2's
//! TCG has no x2APIC, this machine's nested KVM may or may not.
//!
//! A `LocalApic` handle belongs to its CPU (`!Send`): it lives in a
//! [`CpuLocal`] slot and is only used with interrupts disabled. This module
//! hides the crate's mode quirks: xAPIC ids sit in bits 24..31 of the ID
//! register and ICR destinations must be shifted likewise.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use x2apic::lapic::{IpiAllShorthand, LocalApic, LocalApicBuilder, TimerDivide, TimerMode};

use crate::arch::cpu::CpuLocal;

/// Vector of the per-CPU periodic timer interrupt.
pub const TIMER_VECTOR: u8 = 0x40;
/// Vector of the wake-up IPI (used to kick idle CPUs out of `hlt`).
pub const WAKE_VECTOR: u8 = 0xf0;
/// Vector of APIC error interrupts.
pub const ERROR_VECTOR: u8 = 0xfe;
/// Vector of spurious APIC interrupts (never acknowledged).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// The timer counts the APIC bus clock divided by this.
pub const TIMER_DIVISOR: u64 = 16;

static LAPIC: CpuLocal<LocalApic> = CpuLocal::new();
/// Physical (= virtual) address of the xAPIC registers.
static XAPIC_BASE: AtomicU64 = AtomicU64::new(0xfee0_0000);
/// Whether the APICs run in x2APIC mode.
static X2APIC: AtomicBool = AtomicBool::new(false);

/// Sets the xAPIC register address (from the MADT). Call before [`init_current`].
pub fn set_xapic_base(addr: u64) {
    XAPIC_BASE.store(addr, Ordering::Relaxed);
}

/// Enables this CPU's local APIC with its timer stopped (initial count 0).
pub fn init_current() -> Result<(), &'static str> {
    let mut lapic = LocalApicBuilder::new()
        .timer_vector(TIMER_VECTOR as usize)
        .error_vector(ERROR_VECTOR as usize)
        .spurious_vector(SPURIOUS_VECTOR as usize)
        .timer_mode(TimerMode::OneShot)
        .timer_divide(TimerDivide::Div16)
        .timer_initial(0)
        .set_xapic_base(XAPIC_BASE.load(Ordering::Relaxed))
        .build()?;
    // SAFETY: this is the current CPU's APIC, configured with vectors that
    // have IDT gates; LINT0/LINT1 are masked and the timer is stopped.
    unsafe { lapic.enable() };
    // In x2APIC mode IA32_APIC_BASE bit 10 is set.
    // SAFETY: reading IA32_APIC_BASE has no side effects.
    let base = unsafe { x86_64::registers::model_specific::Msr::new(0x1b).read() };
    X2APIC.store(base & (1 << 10) != 0, Ordering::Relaxed);
    // `LocalApic::enable` unmasks the timer *before* it software-enables the
    // APIC; real APICs and KVM ignore LVT unmasking while the APIC is
    // software-disabled (QEMU's TCG does not), so unmask again now.
    // SAFETY: this CPU's APIC, timer on TIMER_VECTOR (stopped for now).
    unsafe { lapic.enable_timer() };
    set_lvts();
    LAPIC.with(|slot| *slot = Some(lapic));
    Ok(())
}

/// Masks LINT0 and LINT1 (`LocalApic::enable` writes 0 to them, which
/// leaves them *unmasked* with the illegal vector 0) and unmasks the error
/// interrupt (which `LocalApic::enable` leaves as reset: masked).
fn set_lvts() {
    const MASKED: u32 = 1 << 16;
    // (x2APIC MSR, xAPIC register offset, value) for LINT0, LINT1, error.
    let lvts = [
        (0x835u32, 0x350u64, MASKED),
        (0x836, 0x360, MASKED),
        (0x837, 0x370, ERROR_VECTOR as u32),
    ];
    for (msr, offset, value) in lvts {
        if is_x2apic() {
            // SAFETY: in x2APIC mode these MSRs are this CPU's LVT LINT0,
            // LINT1 and error registers; the values mask the legacy pins and
            // route APIC errors to ERROR_VECTOR, which has an IDT gate.
            unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value as u64) };
        } else {
            let reg = (XAPIC_BASE.load(Ordering::Relaxed) + offset) as *mut u32;
            // SAFETY: the xAPIC register page is identity-mapped (uncached
            // MMIO); these are this CPU's LVT LINT0, LINT1 and error
            // registers, written with the values described above.
            unsafe { reg.write_volatile(value) };
        }
    }
}

/// Runs `f` on this CPU's local APIC (interrupts disabled meanwhile).
fn with<R>(f: impl FnOnce(&mut LocalApic) -> R) -> R {
    LAPIC.with(|slot| {
        f(slot
            .as_mut()
            .expect("local APIC not initialised on this CPU"))
    })
}

/// True when the APICs run in x2APIC mode (every CPU picks the same mode:
/// the `x2apic` crate decides from CPUID, which is uniform across CPUs).
pub fn is_x2apic() -> bool {
    X2APIC.load(Ordering::Relaxed)
}

/// The local APIC id of the current CPU.
pub fn current_id() -> u32 {
    let x2 = is_x2apic();
    // SAFETY: reading the ID register has no side effects.
    let raw = with(|l| unsafe { l.id() });
    if x2 { raw } else { raw >> 24 }
}

/// ICR destination field for `apic_id` in the current mode.
fn dest(apic_id: u32) -> u32 {
    if is_x2apic() { apic_id } else { apic_id << 24 }
}

/// Acknowledges the interrupt being handled.
pub fn end_of_interrupt() {
    // SAFETY: called from an interrupt handler of a vector the APIC delivered.
    with(|l| unsafe { l.end_of_interrupt() });
}

/// Sends INIT to the CPU with `apic_id` (AP start-up).
pub fn send_init(apic_id: u32) {
    let d = dest(apic_id);
    // SAFETY: INIT to another CPU only resets that (not yet started) AP.
    with(|l| unsafe { l.send_init_ipi(d) });
}

/// Sends a start-up IPI with `vector` (page number of the trampoline).
pub fn send_sipi(apic_id: u32, vector: u8) {
    let d = dest(apic_id);
    // SAFETY: the SIPI starts an AP in wait-for-SIPI state at `vector << 12`,
    // where the caller installed the trampoline.
    with(|l| unsafe { l.send_sipi(vector, d) });
}

/// Sends the fixed IPI `vector` to the CPU with `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    let d = dest(apic_id);
    // SAFETY: a fixed IPI on a vector with an IDT gate.
    with(|l| unsafe { l.send_ipi(vector, d) });
}

/// Sends the fixed IPI `vector` to every other CPU.
pub fn send_ipi_all_others(vector: u8) {
    // SAFETY: a fixed IPI on a vector with an IDT gate.
    with(|l| unsafe { l.send_ipi_all(vector, IpiAllShorthand::AllExcludingSelf) });
}

/// Programs this CPU's timer: periodic with `initial` counts, or one-shot.
pub fn set_timer(periodic: bool, initial: u32) {
    let mode = if periodic {
        TimerMode::Periodic
    } else {
        TimerMode::OneShot
    };
    // SAFETY: reprograms this CPU's own timer on TIMER_VECTOR.
    with(|l| unsafe {
        l.set_timer_mode(mode);
        l.set_timer_divide(TimerDivide::Div16);
        l.set_timer_initial(initial);
    });
}

/// The timer's current count.
pub fn timer_current() -> u32 {
    // SAFETY: reading the current-count register has no side effects.
    with(|l| unsafe { l.timer_current() })
}
