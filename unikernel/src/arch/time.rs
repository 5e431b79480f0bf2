//! Time: a monotonic nanosecond clock from the TSC ([`now_ns`], counted from
//! kernel entry) and the per-CPU periodic local APIC timer tick with its
//! optional hook ([`set_tick_hook`]).
//!
//! Calibration ([`calibrate`], on the BSP at boot): the TSC and the APIC timer
//! are both measured against the legacy PIT (i8254, 1.193182 MHz, present on
//! microvm, pc and q35): PIT channel 0 counts down in mode 2 and is read back
//! with latch commands; over three ~1 ms windows, elapsed PIT ticks convert the
//! TSC and APIC-timer deltas to frequencies and the median of each is kept
//! (each window's end points are read tightly together, so a vCPU preempted
//! by the host skews at most one window). Without a working PIT the TSC
//! frequency comes from CPUID (hypervisor leaf 0x40000010, else leaf 0x15,
//! else 0x16) and the APIC bus is assumed to run at 1 GHz (QEMU's and KVM's
//! constant). `now_ns` relies on the TSC being synchronised across CPUs, which
//! holds under QEMU TCG (it reads the host TSC) and KVM (one TSC offset per VM).

use core::arch::x86_64::{__cpuid, _rdtsc};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::apic;
use crate::arch::cpu::{self, MAX_CPUS};
use crate::arch::port::IoPort;
use crate::arch::sync::IrqMutex;

/// Timer interrupts per second on every CPU.
pub const TICK_HZ: u64 = 250;
/// PIT input clock.
const PIT_HZ: u64 = 1_193_182;
/// Calibration window in PIT ticks (~1 ms).
const PIT_WINDOW: u64 = 1_193;
/// Calibration windows (the median is kept).
const WINDOWS: usize = 3;

// SAFETY: 0x40 and 0x43 are the i8254's channel 0 data and mode/command
// registers on every machine QEMU emulates; the PIT raises IRQ 0 only, which
// is masked at the 8259 and never routed by an I/O APIC, so no value written
// reaches memory. Only the BSP touches them, during calibration.
static PIT_DATA: IoPort<u8> = unsafe { IoPort::new(0x40) };
// SAFETY: see `PIT_DATA`.
static PIT_COMMAND: IoPort<u8> = unsafe { IoPort::new(0x43) };

/// TSC value at kernel entry: `now_ns` counts from there.
static TSC0: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick, 32.32 fixed point (1 GHz until calibrated).
static NS_PER_TSC: AtomicU64 = AtomicU64::new(1 << 32);
/// What [`calibrate`] measured, published once (APs wait for it).
static CAL: spin::Once<Calibration> = spin::Once::new();
/// What [`calibration`] says before [`calibrate`] ran.
const UNCALIBRATED: Calibration = Calibration {
    tsc_hz: 1_000_000_000,
    apic_timer_hz: 1_000_000_000 / apic::TIMER_DIVISOR,
    source: "cpuid",
};
/// Timer interrupts seen by each CPU.
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Called on every tick on every CPU.
static HOOK: IrqMutex<Option<fn(usize)>> = IrqMutex::new(None);

/// Reads the TSC.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is available on every x86_64 CPU and has no side effects.
    unsafe { _rdtsc() }
}

/// Records the TSC value read at kernel entry.
pub fn set_entry_tsc(tsc: u64) {
    TSC0.store(tsc, Ordering::Relaxed);
}

/// Nanoseconds since kernel entry; monotonic, usable on every CPU.
#[inline]
pub fn now_ns() -> u64 {
    tsc_to_ns_since_entry(rdtsc())
}

/// Nanoseconds from kernel entry to the moment the TSC read `tsc`.
#[inline]
pub fn tsc_to_ns_since_entry(tsc: u64) -> u64 {
    let delta = tsc.wrapping_sub(TSC0.load(Ordering::Relaxed));
    ((delta as u128 * NS_PER_TSC.load(Ordering::Relaxed) as u128) >> 32) as u64
}

/// Busy-waits about `ns` nanoseconds (interrupts stay as they are).
pub fn delay_ns(ns: u64) {
    let end = now_ns().saturating_add(ns);
    while now_ns() < end {
        core::hint::spin_loop();
    }
}

/// What calibration measured.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub tsc_hz: u64,
    /// APIC timer input frequency (after the divider).
    pub apic_timer_hz: u64,
    /// "pit" or "cpuid".
    pub source: &'static str,
}

/// Calibrates the TSC and the APIC timer (BSP, local APIC enabled).
pub fn calibrate() -> Calibration {
    let cal = measure_with_pit().unwrap_or_else(from_cpuid);
    NS_PER_TSC.store(
        (1_000_000_000u128 << 32).div_ceil(cal.tsc_hz as u128) as u64,
        Ordering::Relaxed,
    );
    *CAL.call_once(|| cal)
}

/// True once [`calibrate`] has run (APs wait for it before starting timers).
pub fn calibrated() -> bool {
    CAL.is_completed()
}

/// What [`calibrate`] measured (defaults before it ran).
pub fn calibration() -> Calibration {
    CAL.get().copied().unwrap_or(UNCALIBRATED)
}

/// Latches and reads PIT channel 0's counter.
fn pit_read() -> u16 {
    // The latch command (0x00) does not disturb counting.
    PIT_COMMAND.write(0x00);
    let lo = PIT_DATA.read() as u16;
    let hi = PIT_DATA.read() as u16;
    lo | (hi << 8)
}

/// One reading of the PIT, the APIC timer and the TSC, taken close together:
/// of a few tries, the one whose bracketing TSC reads are closest (a vCPU
/// preempted mid-reading would skew the result).
fn sample() -> (u64, u16, u32) {
    let mut best = (u64::MAX, 0, 0, 0);
    for _ in 0..4 {
        let before = rdtsc();
        let pit = pit_read();
        let apic = apic::timer_current();
        let after = rdtsc();
        if after - before < best.0 {
            best = (after - before, before + (after - before) / 2, pit, apic);
        }
    }
    (best.1, best.2, best.3)
}

/// One calibration window: (TSC ticks, APIC timer ticks, PIT ticks).
fn window() -> (u64, u64, u64) {
    let (t0, p0, a0) = sample();
    let (mut prev, mut elapsed) = (p0, 0u64);
    while elapsed < PIT_WINDOW {
        let now = pit_read();
        elapsed += prev.wrapping_sub(now) as u64;
        prev = now;
    }
    let (t1, p1, a1) = sample();
    elapsed += prev.wrapping_sub(p1) as u64;
    (t1 - t0, a0.wrapping_sub(a1) as u64, elapsed)
}

fn measure_with_pit() -> Option<Calibration> {
    // Channel 0 as a free-running rate generator (mode 2, reload 65536).
    PIT_COMMAND.write(0x34);
    PIT_DATA.write(0);
    PIT_DATA.write(0);
    // Wait for the counter to start moving (it never does without a PIT).
    let first = pit_read();
    if !(0..100_000).any(|_| pit_read() != first) {
        return None;
    }
    apic::set_timer(false, u32::MAX);
    // Three windows; the median resists one disturbed by host preemption.
    let mut tsc = [0u64; WINDOWS];
    let mut lapic = [0u64; WINDOWS];
    for i in 0..WINDOWS {
        let (t, a, p) = window();
        tsc[i] = (t as u128 * PIT_HZ as u128 / p as u128) as u64;
        lapic[i] = (a as u128 * PIT_HZ as u128 / p as u128) as u64;
    }
    apic::set_timer(false, 0);
    // One-shot mode 0 with count 1: the PIT stops toggling IRQ 0.
    PIT_COMMAND.write(0x30);
    PIT_DATA.write(1);
    PIT_DATA.write(0);
    tsc.sort_unstable();
    lapic.sort_unstable();
    let (tsc_hz, apic_hz) = (tsc[WINDOWS / 2], lapic[WINDOWS / 2]);
    (tsc_hz > 0 && apic_hz > 0).then_some(Calibration {
        tsc_hz,
        apic_timer_hz: apic_hz,
        source: "pit",
    })
}

fn from_cpuid() -> Calibration {
    let cpuid = __cpuid;
    let apic_default = 1_000_000_000 / apic::TIMER_DIVISOR;
    let hv_max = cpuid(0x4000_0000).eax;
    if hv_max >= 0x4000_0010 {
        let t = cpuid(0x4000_0010);
        if t.eax != 0 {
            let apic = if t.ebx != 0 {
                t.ebx as u64 * 1000 / apic::TIMER_DIVISOR
            } else {
                apic_default
            };
            return Calibration {
                tsc_hz: t.eax as u64 * 1000,
                apic_timer_hz: apic,
                source: "cpuid",
            };
        }
    }
    let max = cpuid(0).eax;
    let mut tsc_hz = 0;
    if max >= 0x15 {
        let l = cpuid(0x15);
        if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
            tsc_hz = l.ecx as u64 * l.ebx as u64 / l.eax as u64;
        }
    }
    if tsc_hz == 0 && max >= 0x16 {
        tsc_hz = (cpuid(0x16).eax & 0xffff) as u64 * 1_000_000;
    }
    Calibration {
        tsc_hz: if tsc_hz == 0 { 1_000_000_000 } else { tsc_hz },
        apic_timer_hz: apic_default,
        source: "cpuid",
    }
}

/// Starts this CPU's periodic tick (after [`calibrate`]).
pub fn start_tick() {
    let initial = (calibration().apic_timer_hz / TICK_HZ).clamp(1, u32::MAX as u64);
    apic::set_timer(true, initial as u32);
}

/// The timer interrupt: counts the tick and runs the hook.
pub(crate) fn on_tick() {
    let me = cpu::id();
    TICKS[me].fetch_add(1, Ordering::Relaxed);
    let hook = *HOOK.lock();
    if let Some(hook) = hook {
        hook(me);
    }
}

/// Timer interrupts CPU `cpu` has taken.
pub fn ticks(cpu: usize) -> u64 {
    TICKS[cpu].load(Ordering::Relaxed)
}

/// Sets (or clears) the function every CPU calls on each timer tick, in
/// interrupt context, with the CPU index (e.g. a watchdog). It must be quick
/// and must not wait for other CPUs.
pub fn set_tick_hook(hook: Option<fn(usize)>) {
    *HOOK.lock() = hook;
}
