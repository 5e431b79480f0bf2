//! Devices, and the fence around their `unsafe` (DMA, MMIO, PCI ports):
//! the virtio glue and block driver ([`virtio`]) and the swap disk built on
//! it ([`disk`]), whose page-granular API is safe.
#![allow(unsafe_code)]

pub mod disk;
pub mod virtio;
