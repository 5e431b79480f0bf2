//! QEMU: the machine types and accelerators the runner uses, the exact
//! command line of the contract (`docs/contract.md`), and finding
//! `qemu-system-x86_64` (`$FORKSWAP_QEMU`, or PATH, installing it with
//! `scripts/install-qemu.sh` when it is missing).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";
/// Most CPUs the runner asks for (documented maximum for both machines).
pub const MAX_CPUS: u32 = 64;
/// Least guest memory the kernel can run with.
pub const MIN_MEM_MIB: u32 = 64;
/// Most guest memory the runner asks for.
pub const MAX_MEM_MIB: u32 = 16384;
/// Default guest memory.
pub const DEFAULT_MEM_MIB: u32 = 256;

/// A QEMU machine type.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    /// `-M microvm`: no firmware, virtio-mmio disk; boots in milliseconds.
    Microvm,
    /// `-M q35`: SeaBIOS, PCI, virtio-blk-pci disk; slower to boot.
    Q35,
}

impl Machine {
    /// Both machines.
    pub const ALL: [Machine; 2] = [Machine::Microvm, Machine::Q35];

    pub const fn name(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm",
            Machine::Q35 => "q35",
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A concrete accelerator.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's software emulator, one host thread per vCPU.
    Tcg,
}

impl Accel {
    pub const fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// The `-accel` argument.
    pub const fn arg(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg,thread=multi",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The CPU model under TCG.
pub const TCG_CPU: &str = "max";

/// The CPU models tried under KVM, in this order, until QEMU accepts one
/// (see [`crate::boot::boot`]): `max` aborts on some hosts' KVM ("failed to
/// set MSR 0x10a", IA32_ARCH_CAPABILITIES, an assertion in QEMU's kvm.c)
/// where the same model without that MSR, or QEMU's default `qemu64`, boots.
/// The kernel needs no CPUID feature beyond these: it runs its local APICs
/// in x2APIC mode when CPUID offers it and in xAPIC mode otherwise, and
/// uses no invariant TSC.
pub const KVM_CPUS: [&str; 4] = ["max", "max,-arch-capabilities", "qemu64,+x2apic", "qemu64"];

/// What goes on one QEMU command line.
#[derive(Clone, Debug)]
pub struct QemuArgs<'a> {
    pub machine: Machine,
    pub accel: Accel,
    /// `-cpu`: [`TCG_CPU`], or one of [`KVM_CPUS`].
    pub cpu: &'a str,
    pub cpus: u32,
    pub mem_mib: u32,
    pub kernel: &'a Path,
    pub append: &'a str,
    pub disk: Option<&'a Path>,
    /// Guest name (`-name`), used to find leftovers.
    pub name: &'a str,
    /// A QMP socket to create here (`-qmp`, see [`crate::qmp`]).
    pub qmp: Option<&'a Path>,
    /// Open the disk with `aio=io_uring` (virtio-blk requests are ~5x
    /// faster under TCG on these machines; the boot engine falls back to
    /// QEMU's default when QEMU refuses it).
    pub io_uring: bool,
}

/// The arguments after the binary, exactly as the contract lists them.
pub fn args(a: &QemuArgs) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    let mut push = |s: &str| v.push(s.into());
    push("-M");
    push(match a.machine {
        Machine::Microvm => "microvm,x-option-roms=off,rtc=off",
        Machine::Q35 => "q35",
    });
    push("-accel");
    push(a.accel.arg());
    push("-cpu");
    push(a.cpu);
    push("-smp");
    push(&a.cpus.to_string());
    push("-m");
    push(&a.mem_mib.to_string());
    for s in [
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-name",
    ] {
        push(s);
    }
    push(a.name);
    if let Some(q) = a.qmp {
        v.push("-qmp".into());
        v.push(crate::qmp::arg(q));
    }
    v.push("-kernel".into());
    v.push(a.kernel.into());
    v.push("-append".into());
    v.push(a.append.into());
    if let Some(d) = a.disk {
        let mut drive = OsString::from("id=swap,file=");
        // QEMU's option syntax doubles commas inside values.
        drive.push(d.to_string_lossy().replace(',', ",,"));
        // werror/rerror=report: an I/O error on the host reaches the guest
        // as a failed request (the kernel then reports it) instead of
        // QEMU's default for writes, which pauses the guest on ENOSPC
        // without a word — a stopped guest that would look like a hang.
        drive.push(",format=raw,if=none,cache=unsafe,werror=report,rerror=report");
        if a.io_uring {
            drive.push(",aio=io_uring");
        }
        v.push("-drive".into());
        v.push(drive);
        v.push("-device".into());
        v.push(
            match a.machine {
                Machine::Microvm => "virtio-blk-device,drive=swap",
                Machine::Q35 => "virtio-blk-pci,drive=swap",
            }
            .into(),
        );
    }
    v
}

/// A command line as one shell-like string, for logs.
pub fn display(bin: &Path, args: &[OsString]) -> String {
    let mut s = bin.display().to_string();
    for a in args {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// The environment variable that names the QEMU binary to use instead of
/// the one on PATH (never installed: it must exist).
pub const QEMU_ENV: &str = "FORKSWAP_QEMU";

/// Finds QEMU: `$FORKSWAP_QEMU` when set (it must be an executable file),
/// else `qemu-system-x86_64` on PATH; when that is missing, runs
/// `scripts/install-qemu.sh` (saying so on stderr) and looks again.
pub fn locate_or_install(workspace: &Path) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(QEMU_ENV) {
        let p = PathBuf::from(p);
        return match which::which(&p) {
            Ok(found) => Ok(found),
            Err(_) => bail!(
                "{QEMU_ENV}={}: no such executable (unset it to use {QEMU} from PATH)",
                p.display()
            ),
        };
    }
    if let Ok(p) = which::which(QEMU) {
        return Ok(p);
    }
    let script = workspace.join("scripts/install-qemu.sh");
    eprintln!(
        "{QEMU} is not on PATH: installing it with {}",
        script.display()
    );
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        bail!(
            "{QEMU} is missing and {} failed ({status}); install QEMU (apt-get install -y qemu-system-x86) and retry",
            script.display()
        );
    }
    which::which(QEMU).with_context(|| {
        format!(
            "{} succeeded but {QEMU} is still not on PATH",
            script.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microvm_command_line_matches_the_contract() {
        let a = QemuArgs {
            machine: Machine::Microvm,
            accel: Accel::Tcg,
            cpu: TCG_CPU,
            cpus: 4,
            mem_mib: 256,
            kernel: Path::new("/k"),
            append: "mode=tests expect_cpus=4",
            disk: Some(Path::new("/tmp/d,1/swap.img")),
            name: "forkswap-1-2",
            qmp: Some(Path::new("/tmp/d,1/qmp.sock")),
            io_uring: true,
        };
        let s = display(Path::new("qemu-system-x86_64"), &args(&a));
        assert_eq!(
            s,
            "qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off -accel tcg,thread=multi \
             -cpu max -smp 4 -m 256 -nodefaults -no-user-config -display none -serial stdio \
             -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -name forkswap-1-2 \
             -qmp unix:/tmp/d,,1/qmp.sock,server=on,wait=off -kernel /k -append 'mode=tests expect_cpus=4' \
             -drive id=swap,file=/tmp/d,,1/swap.img,format=raw,if=none,cache=unsafe,werror=report,rerror=report,aio=io_uring \
             -device virtio-blk-device,drive=swap"
        );
        let a = QemuArgs {
            io_uring: false,
            ..a
        };
        assert!(display(Path::new("q"), &args(&a)).contains("rerror=report -device"));
    }

    #[test]
    fn q35_uses_pci_and_kvm() {
        let a = QemuArgs {
            machine: Machine::Q35,
            accel: Accel::Kvm,
            cpu: KVM_CPUS[1],
            cpus: 2,
            mem_mib: 128,
            kernel: Path::new("/k"),
            append: "mode=probe",
            disk: Some(Path::new("/d")),
            name: "n",
            qmp: None,
            io_uring: false,
        };
        let s = display(Path::new("q"), &args(&a));
        assert!(
            s.contains("-M q35 -accel kvm -cpu max,-arch-capabilities -smp 2 -m 128"),
            "{s}"
        );
        assert!(s.ends_with("-device virtio-blk-pci,drive=swap"), "{s}");
        let a = QemuArgs { disk: None, ..a };
        assert!(!display(Path::new("q"), &args(&a)).contains("-drive"));
    }
}
