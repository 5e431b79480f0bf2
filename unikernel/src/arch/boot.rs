//! Boot sequence of the BSP, from the PVH entry to the mode dispatch.
//!
//! [`kernel_boot`] runs on the small boot stack: it reads the PVH start info,
//! the ACPI MADT and the memory map, refines the page tables, allocates the
//! guarded per-CPU stacks and the heap, then switches to CPU 0's guarded stack
//! and continues in [`bsp_main`]: GDT/TSS/IDT, local APIC, the swap disk's
//! transport (initialised by its first user), `Hello`, the APs, time
//! calibration, `Ready`, and the mode. Each phase's end is stamped on the
//! [`timeline`].

use alloc::string::String;
use alloc::vec::Vec;

use spin::Once;
use stress::proto::{ExitCode, Record};
use x86_64::instructions::interrupts;

use crate::arch::pvh::BootInfo;
use crate::arch::{acpi, apic, cpu, irq, panic, qemu, smp, time, timeline};
use crate::arch::{gdt, idt, mtrr, paging};
use crate::cmdline::{self, CrashKind, Mode};
use crate::drivers::disk;
use crate::mem::{frame, heap, stack};
use crate::{console, modes};

/// How long the BSP waits for the APs to check in.
const AP_TIMEOUT_NS: u64 = 3_000_000_000;
/// Free memory kept outside the heap for stacks, page tables and DMA.
const FRAME_RESERVE: u64 = 4 << 20;
/// RAM above this is not identity-mapped and not used.
const MAPPED_LIMIT: u64 = 4 << 30;

/// What `kernel_boot` found, for `bsp_main`.
struct Found {
    cmdline: String,
    args: Result<cmdline::Cmdline, String>,
    lapic_addr: u64,
    madt_apic_ids: Vec<u32>,
    /// virtio-mmio windows from the DSDT (microvm with ACPI).
    dsdt_virtio_mmio: Vec<cmdline::VirtioMmio>,
    mem_mib: u32,
}

static FOUND: Once<Found> = Once::new();

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Called by the entry code in long mode, on the boot stack, interrupts off.
#[unsafe(no_mangle)]
extern "C" fn kernel_boot(start_info: u64, entry_tsc: u64) -> ! {
    // SAFETY: the first code on the BSP: nothing used `cpu::id` yet.
    unsafe { cpu::bind_current(0) };
    time::set_entry_tsc(entry_tsc);
    console::init();
    // Exceptions from here on are reported (the double fault only once the
    // TSS with its IST stack is loaded, in `bsp_main`).
    idt::load();

    // SAFETY: `start_info` is what QEMU passed in ebx; low memory is intact.
    let boot = match unsafe { BootInfo::read(start_info) } {
        Ok(boot) => boot,
        Err(e) => panic::fatal(format_args!("boot: {e}")),
    };
    let args = cmdline::parse(&boot.cmdline);
    if let Ok(cmdline::Cmdline {
        mode: Mode::Crash {
            kind: CrashKind::EarlyExit,
            ..
        },
        ..
    }) = &args
    {
        qemu::exit(ExitCode::Pass);
    }
    timeline::mark("pvh");

    let cpus = acpi::cpus(boot.rsdp).unwrap_or_else(|e| panic::fatal(format_args!("boot: {e}")));
    if cpus.ignored > 0 {
        crate::diag!(
            "{} CPUs beyond the first {} are ignored",
            cpus.ignored,
            cpu::MAX_CPUS
        );
    }
    timeline::mark("acpi");

    // Physical memory: RAM from the memory map, minus low memory (firmware,
    // the AP trampoline) and the kernel image.
    let mut mem_bytes = 0;
    {
        let mut frames = frame::FRAMES.lock();
        for &(start, end) in boot.ram() {
            mem_bytes += end.min(MAPPED_LIMIT).saturating_sub(start);
            frames.add(start.max(1 << 20), end.min(MAPPED_LIMIT));
        }
        let image = (
            core::ptr::addr_of!(__kernel_start) as u64,
            core::ptr::addr_of!(__kernel_end) as u64,
        );
        frames.remove(image.0, image.1);
    }
    timeline::mark("frames");
    paging::init(|start, end| boot.has_ram(start, end))
        .unwrap_or_else(|e| panic::fatal(format_args!("boot: paging: {e}")));
    timeline::mark("paging");
    stack::allocate(cpus.apic_ids().len())
        .unwrap_or_else(|e| panic::fatal(format_args!("boot: {e}")));
    timeline::mark("stacks");
    let heap = frame::FRAMES.lock().take_largest(FRAME_RESERVE);
    match heap {
        // SAFETY: the extent was removed from the frame allocator, is RAM
        // below 4 GiB (identity-mapped) and nothing else uses it.
        Some(x) if unsafe { heap::add_region(x.start, x.end) } => {}
        _ => panic::fatal(format_args!("boot: no memory for the heap")),
    }
    timeline::mark("heap");

    FOUND.call_once(|| Found {
        cmdline: boot.cmdline,
        args,
        lapic_addr: cpus.lapic_addr,
        madt_apic_ids: cpus.apic_ids().to_vec(),
        dsdt_virtio_mmio: cpus.virtio_mmio,
        mem_mib: (mem_bytes >> 20) as u32,
    });
    let top = stack::kernel_top(0);
    // SAFETY: `top` is the top of CPU 0's guarded stack, unused so far;
    // `bsp_main` never returns, so nothing needs the boot stack afterwards.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {main}",
            "ud2",
            top = in(reg) top,
            main = sym bsp_main,
            options(noreturn)
        )
    }
}

/// The BSP's main flow, on its guarded stack.
extern "C" fn bsp_main() -> ! {
    let found = FOUND.get().expect("kernel_boot fills FOUND");
    mtrr::enable_write_back();
    gdt::init_current(stack::ist_top(0));
    irq::disable_legacy_pic();
    apic::set_xapic_base(found.lapic_addr);
    if let Err(e) = apic::init_current() {
        panic::fatal(format_args!("boot: cannot enable the local APIC: {e}"));
    }
    let bsp_apic = apic::current_id();
    cpu::set_apic_id(0, bsp_apic);
    // The calibration window spans the rest of the boot up to `calibrate`.
    time::start_calibration();
    timeline::mark("apic");

    let transport = match &found.args {
        Ok(args) => disk::discover(&args.virtio_mmio, &found.dsdt_virtio_mmio),
        Err(_) => disk::Transport::None,
    };
    timeline::mark("discover");

    // Start the APs: they boot while the BSP prints Hello and calibrates the
    // clocks (they wait for the calibration, halted). Only after `discover`:
    // enabling the PCI device (bus mastering) changes QEMU's memory map, and
    // QEMU 7.2's TCG was seen to crash (SIGSEGV in a vCPU thread) when that
    // raced with APs coming out of INIT/SIPI on q35.
    let aps: Vec<u32> = found
        .madt_apic_ids
        .iter()
        .copied()
        .filter(|&id| id != bsp_apic)
        .collect();
    smp::start_aps(&aps);
    timeline::mark("sipi");

    console::record(Record::Hello {
        kernel: env!("CARGO_PKG_VERSION").into(),
        cpus: found.madt_apic_ids.len() as u32,
        mem_mib: found.mem_mib,
        transport: transport.name().into(),
        cmdline: found.cmdline.clone(),
    });
    timeline::mark("hello");
    let args = match &found.args {
        Ok(args) => args,
        Err(e) => panic::fatal(format_args!("bad kernel command line: {e}")),
    };

    time::calibrate();
    timeline::mark("calibrate");
    smp::wake_others();
    time::start_tick();
    interrupts::enable();
    let online = smp::wait_for_aps(&aps, AP_TIMEOUT_NS);
    timeline::mark("aps");
    console::record(Record::Ready {
        cpus: online as u32,
        boot_ns: time::now_ns(),
    });
    // The disk is initialised by the first `disk::get` (modes that use it).
    disk::set_found(transport);
    timeline::mark("ready");
    if args.boot_timeline {
        timeline::print();
    }
    modes::run(args, found.madt_apic_ids.len())
}
