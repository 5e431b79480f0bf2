//! The swap disk: page-granular (4 KiB) access to the virtio-blk device, from
//! any CPU, concurrently. Found at boot on microvm through its virtio-mmio
//! windows (MMIO transport: described in the DSDT, or `virtio_mmio.device=`
//! on the command line when QEMU appends it, i.e. with ACPI off), else on PCI
//! bus 0 (q35/pc, PCI transport).
//!
//! ```ignore
//! let disk = disk::get().expect("no swap disk");
//! disk.write_pages(7, &page)?;        // page 7 = sectors 56..64
//! disk.read_pages(7, &mut page)?;
//! ```

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::ptr::NonNull;

use spin::Once;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport as _};

use crate::arch::sync::IrqMutex;
use crate::cmdline::VirtioMmio;
use crate::drivers::virtio::blk::{BlkDevice, BlkError};
use crate::drivers::virtio::{hal::KernelHal, pci};

/// Size of a disk page: one swap block, one page of the model.
pub use stress::platform::PAGE_SIZE;
const SECTOR_SIZE: usize = 512;
const SECTORS_PER_PAGE: u64 = (PAGE_SIZE / SECTOR_SIZE) as u64;
/// Pages per virtio request (longer transfers are split).
const MAX_REQUEST_PAGES: usize = 64;

/// The swap disk.
pub struct Disk {
    dev: BlkDevice,
    transport: &'static str,
}

/// Why a disk access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskError {
    /// The buffer is empty or not a whole number of pages.
    BadLength(usize),
    /// The pages lie (partly) beyond the end of the disk.
    OutOfRange { first_page: u64, pages: u64 },
    /// The virtio request failed.
    Io(BlkError),
}

impl fmt::Display for DiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskError::BadLength(len) => {
                write!(f, "buffer of {len} bytes is not a whole number of pages")
            }
            DiskError::OutOfRange { first_page, pages } => {
                write!(
                    f,
                    "pages {first_page}..{} beyond the end of the disk",
                    first_page + pages
                )
            }
            DiskError::Io(e) => write!(f, "I/O error: {e:?}"),
        }
    }
}

impl Disk {
    /// Number of pages on the disk.
    pub fn capacity_pages(&self) -> u64 {
        self.dev.sectors() / SECTORS_PER_PAGE
    }

    /// Most requests that were in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.dev.max_in_flight()
    }

    /// "mmio" or "pci".
    pub fn transport(&self) -> &'static str {
        self.transport
    }

    fn check(&self, first_page: u64, len: usize) -> Result<u64, DiskError> {
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(DiskError::BadLength(len));
        }
        let pages = (len / PAGE_SIZE) as u64;
        if first_page
            .checked_add(pages)
            .is_none_or(|end| end > self.capacity_pages())
        {
            return Err(DiskError::OutOfRange { first_page, pages });
        }
        Ok(pages)
    }

    /// Reads `buf.len() / 4096` pages starting at page `first_page`.
    pub fn read_pages(&self, first_page: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check(first_page, buf.len())?;
        for (i, chunk) in buf.chunks_mut(MAX_REQUEST_PAGES * PAGE_SIZE).enumerate() {
            let sector = (first_page + (i * MAX_REQUEST_PAGES) as u64) * SECTORS_PER_PAGE;
            // SAFETY: `chunk` is exclusively borrowed for the whole call.
            unsafe {
                self.dev
                    .transfer(sector, chunk.as_mut_ptr(), chunk.len(), false)
            }
            .map_err(DiskError::Io)?;
        }
        Ok(())
    }

    /// Writes `buf.len() / 4096` pages starting at page `first_page`.
    pub fn write_pages(&self, first_page: u64, buf: &[u8]) -> Result<(), DiskError> {
        self.check(first_page, buf.len())?;
        for (i, chunk) in buf.chunks(MAX_REQUEST_PAGES * PAGE_SIZE).enumerate() {
            let sector = (first_page + (i * MAX_REQUEST_PAGES) as u64) * SECTORS_PER_PAGE;
            // SAFETY: `chunk` is borrowed for the whole call and a write
            // request only reads it (the pointer is never written through).
            unsafe {
                self.dev
                    .transfer(sector, chunk.as_ptr() as *mut u8, chunk.len(), true)
            }
            .map_err(DiskError::Io)?;
        }
        Ok(())
    }
}

/// What [`discover`] found, until the first [`get`] initialises it.
static FOUND: IrqMutex<Option<Transport>> = IrqMutex::new(None);
/// The disk, once the first [`get`] has tried to initialise it.
static DISK: Once<Option<Disk>> = Once::new();

/// Keeps the transport [`discover`] found for the first [`get`]: the device
/// is only initialised when a mode uses the disk (`probe` and `crash` do
/// not, and virtio set-up is a good part of their boot).
pub fn set_found(transport: Transport) {
    if !matches!(transport, Transport::None) {
        *FOUND.lock() = Some(transport);
    }
}

/// The swap disk, if the machine has one and it initialised. The first call
/// initialises it (other CPUs calling meanwhile wait); a failure is said
/// once, in a `# virtio-blk: ...` line.
pub fn get() -> Option<&'static Disk> {
    DISK.call_once(|| {
        let transport = FOUND.lock().take()?;
        init(transport)
            .inspect_err(|e| crate::diag!("virtio-blk: {e}"))
            .ok()
    })
    .as_ref()
}

/// A virtio block transport found at boot.
pub enum Transport {
    None,
    Mmio(MmioTransport<'static>),
    Pci(PciTransport),
}

impl Transport {
    /// "mmio", "pci" or "none" (the `Hello` record's `transport`).
    pub fn name(&self) -> &'static str {
        match self {
            Transport::None => "none",
            Transport::Mmio(_) => "mmio",
            Transport::Pci(_) => "pci",
        }
    }
}

/// Looks for the swap disk: virtio-mmio windows from the command line or the
/// DSDT (microvm), else PCI bus 0 (q35, pc).
pub fn discover(cmdline: &[VirtioMmio], dsdt: &[VirtioMmio]) -> Transport {
    for dev in cmdline.iter().chain(dsdt) {
        let Some(header) = NonNull::new(dev.base as *mut VirtIOHeader) else {
            continue;
        };
        // SAFETY: QEMU announced a virtio-mmio register window of `size`
        // bytes at `base`; it lies in the identity-mapped, uncached MMIO part
        // of the low 4 GiB and stays valid for the kernel's lifetime. Each
        // window is used by at most one transport (we stop at the first disk).
        match unsafe { MmioTransport::new(header, dev.size as usize) } {
            Ok(t) if t.device_type() == DeviceType::Block => return Transport::Mmio(t),
            _ => {}
        }
    }
    if let Some((mut root, df)) = pci::find_blk() {
        match PciTransport::new::<KernelHal, _>(&mut root, df) {
            Ok(t) => return Transport::Pci(t),
            Err(e) => crate::diag!("virtio-blk on PCI {df:?}: {e:?}"),
        }
    }
    Transport::None
}

/// Initialises the disk found by [`discover`] (`Err` also when there is none).
fn init(transport: Transport) -> Result<Disk, String> {
    let name = transport.name();
    let some: SomeTransport<'static> = match transport {
        Transport::None => return Err("no virtio-blk device".into()),
        Transport::Mmio(t) => t.into(),
        Transport::Pci(t) => t.into(),
    };
    let dev =
        BlkDevice::new(some).map_err(|e| format!("cannot initialise the {name} device: {e:?}"))?;
    Ok(Disk {
        dev,
        transport: name,
    })
}
