//! Time: a monotonic nanosecond clock from the TSC ([`now_ns`], counted from
//! kernel entry) and the per-CPU periodic local APIC timer tick with its
//! optional hook ([`set_tick_hook`]).
//!
//! Calibration (on the BSP at boot): the TSC and the APIC timer are both
//! measured against the legacy PIT (i8254, 1.193182 MHz, present on microvm,
//! pc and q35): PIT channel 0 counts down in mode 2 and is read back with
//! latch commands. The window is the boot itself: [`start_calibration`] takes
//! the first reading as soon as the local APIC is up, [`calibrate`] the last
//! one after the devices, the APs' start-up and `Hello`, so nobody waits for
//! it. The PIT wraps every 55 ms and is not watched meanwhile: a short
//! (~0.2 ms) window at the end gives a rough TSC rate that counts the wraps,
//! and the long window's rate must agree with it within 5%. Otherwise (a
//! window under 0.5 ms or over a second long, or a disagreement), three ~1 ms
//! windows are measured and the median of each rate is kept (each window's
//! end points are read tightly together, so a vCPU preempted by the host
//! skews at most one window). All three clocks run on host time under TCG
//! and KVM, so a preemption inside a window does not skew it. Without a
//! working PIT the TSC
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

/// Timer interrupts per second on every CPU from boot ([`set_tick_hz`]
/// changes a CPU's).
pub const TICK_HZ: u64 = 250;
/// PIT input clock.
const PIT_HZ: u64 = 1_193_182;
/// Fallback calibration window in PIT ticks (~1 ms).
const PIT_WINDOW: u64 = 1_193;
/// The short window that counts the long window's PIT wraps (~0.2 ms).
const SHORT_WINDOW: u64 = 240;
/// The long window must be this long (~0.5 ms) ...
const LONG_MIN: u64 = 597;
/// ... and at most this long (1 s), for its wraps to be counted safely.
const LONG_MAX: u64 = PIT_HZ;
/// Period of PIT channel 0 with reload 0 (65536).
const PIT_PERIOD: u64 = 1 << 16;
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
/// The first reading of the boot-long calibration window, or `None` when
/// there is no working PIT ([`start_calibration`]).
static START: spin::Once<Option<Sample>> = spin::Once::new();
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

/// What calibration measured.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    pub tsc_hz: u64,
    /// APIC timer input frequency (after the divider).
    pub apic_timer_hz: u64,
    /// "pit" or "cpuid".
    pub source: &'static str,
}

/// Starts the calibration window (BSP, local APIC enabled, early at boot):
/// starts the PIT and this CPU's APIC timer and takes the first reading.
pub fn start_calibration() {
    START.call_once(|| {
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
        Some(sample())
    });
}

/// Calibrates the TSC and the APIC timer (BSP, after [`start_calibration`],
/// which it calls itself if nobody did).
pub fn calibrate() -> Calibration {
    start_calibration();
    let cal = START
        .get()
        .copied()
        .flatten()
        .and_then(|start| boot_window(start).or_else(median_of_windows))
        .unwrap_or_else(from_cpuid);
    apic::set_timer(false, 0);
    // One-shot mode 0 with count 1: the PIT stops toggling IRQ 0.
    PIT_COMMAND.write(0x30);
    PIT_DATA.write(1);
    PIT_DATA.write(0);
    NS_PER_TSC.store(
        (1_000_000_000u64 << 32).div_ceil(cal.tsc_hz.max(1)),
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

/// One reading: (TSC, PIT count, APIC timer count).
type Sample = (u64, u16, u32);

/// One reading of the PIT, the APIC timer and the TSC, taken close together:
/// of a few tries, the one whose bracketing TSC reads are closest (a vCPU
/// preempted mid-reading would skew the result).
fn sample() -> Sample {
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

/// A calibration window of at least `ticks` PIT ticks, watched throughout:
/// (TSC ticks, APIC timer ticks, PIT ticks, the last reading).
fn window(ticks: u64) -> (u64, u64, u64, Sample) {
    let (t0, p0, a0) = sample();
    let (mut prev, mut elapsed) = (p0, 0u64);
    while elapsed < ticks {
        let now = pit_read();
        elapsed += prev.wrapping_sub(now) as u64;
        prev = now;
    }
    let end @ (t1, p1, a1) = sample();
    elapsed += prev.wrapping_sub(p1) as u64;
    (t1 - t0, a0.wrapping_sub(a1) as u64, elapsed, end)
}

/// `ticks` of a clock over `pit` PIT ticks, in Hz.
fn rate(ticks: u64, pit: u64) -> u64 {
    // u64 arithmetic (no 128-bit division routine to run at boot): a
    // product that saturates (a window of hours) gives an absurd rate that
    // the callers' checks reject.
    ticks.saturating_mul(PIT_HZ) / pit.max(1)
}

/// The window from [`start_calibration`]'s reading `start` to now, its PIT
/// wraps counted with a short window's rough TSC rate; `None` when it is too
/// short or too long, or the two rates disagree.
fn boot_window((t0, p0, a0): Sample) -> Option<Calibration> {
    let (t, _, p, (t1, p1, a1)) = window(SHORT_WINDOW);
    let rough = rate(t, p);
    let tsc_ticks = t1 - t0;
    let predicted = tsc_ticks.saturating_mul(PIT_HZ) / rough.max(1);
    if !(LONG_MIN..=LONG_MAX).contains(&predicted) {
        return None;
    }
    let seen = p0.wrapping_sub(p1) as u64;
    let wraps = (predicted.saturating_sub(seen) + PIT_PERIOD / 2) / PIT_PERIOD;
    let pit = seen + wraps * PIT_PERIOD;
    let tsc_hz = rate(tsc_ticks, pit);
    let apic_hz = rate(a0.wrapping_sub(a1) as u64, pit);
    (tsc_hz.abs_diff(rough) <= rough / 20 && apic_hz > 0).then_some(Calibration {
        tsc_hz,
        apic_timer_hz: apic_hz,
        source: "pit",
    })
}

/// Three ~1 ms windows; the median of each rate resists one window
/// disturbed by host preemption.
fn median_of_windows() -> Option<Calibration> {
    let mut tsc = [0u64; WINDOWS];
    let mut lapic = [0u64; WINDOWS];
    for i in 0..WINDOWS {
        let (t, a, p, _) = window(PIT_WINDOW);
        tsc[i] = rate(t, p);
        lapic[i] = rate(a, p);
    }
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
    set_tick_hz(TICK_HZ);
}

/// Nanoseconds between two ticks, as last set (every CPU runs the same
/// rate: boot and `mode=stress` set it on all of them).
static TICK_NS: AtomicU64 = AtomicU64::new(1_000_000_000 / TICK_HZ);

/// Reprograms this CPU's periodic tick to `hz` (after [`calibrate`]).
pub fn set_tick_hz(hz: u64) {
    let hz = hz.max(1);
    let initial = (calibration().apic_timer_hz / hz).clamp(1, u32::MAX as u64);
    TICK_NS.store(1_000_000_000 / hz, Ordering::Relaxed);
    apic::set_timer(true, initial as u32);
}

/// Halts this CPU until its next interrupt (its tick, an IPI): gives the
/// host the core while the CPU has nothing to do. With interrupts off
/// nothing would wake it, so it only spins once.
pub fn sleep_until_interrupt() {
    if x86_64::instructions::interrupts::are_enabled() {
        x86_64::instructions::hlt();
    } else {
        core::hint::spin_loop();
    }
}

/// The slowest tick [`nap`] halts for: a halt can last a whole tick
/// period, which at the boot rate (4 ms) would be longer than most waits.
const NAP_MAX_TICK_NS: u64 = 200_000;

/// One turn of a wait for something another agent (a device, another
/// CPU) finishes: halts until the next interrupt when ticks come at least
/// every [`NAP_MAX_TICK_NS`] (during a stress run), so the host core goes
/// to that agent (under TCG, QEMU's I/O threads); otherwise spins once.
pub fn nap() {
    if TICK_NS.load(Ordering::Relaxed) <= NAP_MAX_TICK_NS {
        sleep_until_interrupt();
    } else {
        core::hint::spin_loop();
    }
}

/// Waits about `ns` nanoseconds, halting through whole tick periods and
/// spinning the rest, so that a long wait leaves the host core to others.
pub fn sleep_ns(ns: u64) {
    let end = now_ns().saturating_add(ns);
    let tick = TICK_NS.load(Ordering::Relaxed);
    loop {
        let now = now_ns();
        if now >= end {
            return;
        }
        if end - now > tick {
            sleep_until_interrupt();
        } else {
            core::hint::spin_loop();
        }
    }
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
