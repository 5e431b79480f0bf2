//! virtio: the DMA glue for `virtio-drivers` ([`hal`]), PCI configuration
//! access by I/O ports ([`pci`]) and the block device driver ([`blk`]).

pub mod blk;
pub mod hal;
pub mod pci;
