//! PCI configuration space through the legacy I/O ports 0xcf8/0xcfc
//! (configuration mechanism #1, present on pc and q35; on microvm nothing
//! answers and every read returns all ones), and the search for a virtio
//! block device on bus 0.

use crate::arch::port::IoPort;
use crate::arch::sync::IrqMutex;
use virtio_drivers::transport::DeviceType;
use virtio_drivers::transport::pci::bus::{Command, ConfigurationAccess, DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::virtio_device_type;

/// The address/data port pair, serialised.
static PORTS: IrqMutex<(IoPort<u32>, IoPort<u32>)> =
    // SAFETY: 0xcf8/0xcfc are the PCI configuration address and data ports
    // (mechanism #1); the pair is only used under this lock, and only by
    // `PortCam`, through which only the kernel's own device setup (enabling
    // the virtio disk's decoding and bus mastering, the BARs the virtio
    // transport reads) reaches configuration space.
    IrqMutex::new(unsafe { (IoPort::new(0xcf8), IoPort::new(0xcfc)) });

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
        let ports = PORTS.lock();
        ports.0.write(address(df, offset));
        ports.1.read()
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        let ports = PORTS.lock();
        ports.0.write(address(df, offset));
        ports.1.write(data);
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
