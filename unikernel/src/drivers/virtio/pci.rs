//! PCI configuration space through the legacy I/O ports 0xcf8/0xcfc
//! (configuration mechanism #1, present on pc and q35; on microvm nothing
//! answers and every read returns all ones), and the search for a virtio
//! block device on bus 0.

use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::virtio_device_type;
use x86_64::instructions::port::Port;

use crate::arch::sync::IrqMutex;

/// Serialises the address/data port pair.
static PORTS: IrqMutex<()> = IrqMutex::new(());

/// Configuration access by I/O ports.
pub struct PortCam;

fn address(df: DeviceFunction, offset: u8) -> u32 {
    0x8000_0000
        | (df.bus as u32) << 16
        | (df.device as u32) << 11
        | (df.function as u32) << 8
        | (offset as u32 & 0xfc)
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        let _ports = PORTS.lock();
        // SAFETY: 0xcf8/0xcfc are the PCI configuration ports; the address
        // and data accesses are paired under `PORTS`.
        unsafe {
            Port::<u32>::new(0xcf8).write(address(df, offset));
            Port::<u32>::new(0xcfc).read()
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        let _ports = PORTS.lock();
        // SAFETY: as in `read_word`; only the kernel's own device setup
        // writes configuration space.
        unsafe {
            Port::<u32>::new(0xcf8).write(address(df, offset));
            Port::<u32>::new(0xcfc).write(data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// Finds the first virtio block device on PCI bus 0 and enables its memory
/// decoding and bus mastering (DMA).
pub fn find_blk() -> Option<(PciRoot<PortCam>, DeviceFunction)> {
    let mut root = PciRoot::new(PortCam);
    let found = root
        .enumerate_bus(0)
        .find(|(_, info)| virtio_device_type(info) == Some(DeviceType::Block))
        .map(|(df, _)| df)?;
    root.set_command(
        found,
        Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER,
    );
    Some((root, found))
}
