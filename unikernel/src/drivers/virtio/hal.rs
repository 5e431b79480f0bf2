//! `virtio-drivers`' [`Hal`] for this kernel: DMA memory comes from the frame
//! allocator, and since everything is identity-mapped a buffer's physical
//! address is its address (no bounce buffers, nothing to do on unshare).

use core::ptr::NonNull;

use virtio_drivers::{BufferDirection, Hal, PhysAddr};

use crate::arch::paging;
use crate::mem::frame;

/// The kernel's virtio HAL.
pub struct KernelHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, exclusively owned frames
// from the frame allocator (identity-mapped: vaddr == paddr); `dma_dealloc`
// returns them; `mmio_phys_to_virt` returns the identity mapping of MMIO that
// `paging::map_mmio` guarantees is mapped; `share` returns the identity
// address of a buffer in mapped, device-coherent RAM (x86 DMA is coherent).
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let addr = frame::alloc_zeroed(pages as u64).expect("out of frames for virtio DMA");
        (
            addr,
            NonNull::new(addr as *mut u8).expect("frame 0 is never allocated"),
        )
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: the caller returns memory from `dma_alloc` it no longer uses.
        unsafe { frame::free(paddr, pages as u64) };
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        paging::map_mmio(paddr, size as u64).expect("cannot map a virtio BAR");
        NonNull::new(paddr as *mut u8).expect("MMIO at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
