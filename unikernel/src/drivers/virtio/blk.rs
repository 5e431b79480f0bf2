//! The virtio block device, shared by every CPU.
//!
//! One IRQ-safe lock guards the virtqueue, and only for queue operations:
//! submitting a request (`*_blocks_nb`) and reaping completions. A CPU that
//! submitted waits *outside* the lock for its own request, polling: whoever
//! holds the lock next pops every used descriptor in ring order and completes
//! it on behalf of its owner (the table `pending` records, per token, where
//! the owner's request, buffer, response and completion flag live), so many
//! requests from different CPUs are in flight at once. Interrupts are not
//! used (no I/O APIC routing): completion is polled, spinning at first,
//! then napping between looks (halting until the tick during a stress run).

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::SomeTransport;

use super::hal::KernelHal;
use crate::arch::sync::IrqMutex;
use crate::arch::time;

/// How long a CPU spins on its own request before it naps ([`time::nap`]).
const SPIN_NS: u64 = 20_000;

/// Most tokens the driver hands out (its queue size).
const MAX_TOKENS: usize = 16;

const IN_FLIGHT: u8 = 0;
const DONE_OK: u8 = 1;
const DONE_ERR: u8 = 2;

/// Where a submitted request's memory lives until it completes.
struct Pending {
    req: *const BlkReq,
    buf: *mut u8,
    len: usize,
    resp: *mut BlkResp,
    write: bool,
    state: *const AtomicU8,
}

// SAFETY: the pointers refer to the stack frame and buffer of a CPU that is
// blocked in `BlkDevice::transfer` until `state` leaves IN_FLIGHT; whichever
// CPU completes the request may use them until it sets `state`.
unsafe impl Send for Pending {}

struct Queue {
    dev: VirtIOBlk<KernelHal, SomeTransport<'static>>,
    pending: [Option<Pending>; MAX_TOKENS],
}

impl Queue {
    /// Completes every request the device has finished.
    fn reap(&mut self) {
        while let Some(token) = self.dev.peek_used() {
            let p = self.pending[token as usize]
                .take()
                .expect("virtio-blk completed a token nobody submitted");
            // SAFETY: `p` describes exactly the buffers submitted with
            // `token`, still alive (the owner waits on `state`) and not
            // accessed by the owner until `state` is set below.
            let result = unsafe {
                if p.write {
                    let buf = core::slice::from_raw_parts(p.buf, p.len);
                    self.dev
                        .complete_write_blocks(token, &*p.req, buf, &mut *p.resp)
                } else {
                    let buf = core::slice::from_raw_parts_mut(p.buf, p.len);
                    self.dev
                        .complete_read_blocks(token, &*p.req, buf, &mut *p.resp)
                }
            };
            let state = if result.is_ok() { DONE_OK } else { DONE_ERR };
            // SAFETY: the owner's flag is alive until it sees a final state.
            unsafe { (*p.state).store(state, Ordering::Release) };
        }
    }
}

/// A virtio block device usable from every CPU at once.
pub struct BlkDevice {
    queue: IrqMutex<Queue>,
    sectors: u64,
    /// Most requests seen in flight at once.
    max_in_flight: AtomicUsize,
}

/// A failed block request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkError {
    /// The driver refused the request.
    Driver(virtio_drivers::Error),
    /// The device answered with an error status.
    Device,
}

impl BlkDevice {
    /// Initialises the device behind `transport`.
    pub fn new(transport: SomeTransport<'static>) -> Result<BlkDevice, virtio_drivers::Error> {
        let mut dev = VirtIOBlk::<KernelHal, _>::new(transport)?;
        assert!(dev.virt_queue_size() as usize <= MAX_TOKENS);
        // Completions are polled: ask the device not to interrupt.
        dev.disable_interrupts();
        let sectors = dev.capacity();
        Ok(BlkDevice {
            queue: IrqMutex::new(Queue {
                dev,
                pending: [const { None }; MAX_TOKENS],
            }),
            sectors,
            max_in_flight: AtomicUsize::new(0),
        })
    }

    /// Most requests that were in flight at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::Relaxed)
    }

    /// Capacity in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Reads or writes `len` bytes at `buf` from/to `sector`, waiting for
    /// completion. `len` must be a non-zero multiple of 512.
    ///
    /// # Safety
    /// `buf..buf + len` must be valid (for writes by the device when
    /// `!write`) and not accessed by anyone else until this returns.
    pub unsafe fn transfer(
        &self,
        sector: u64,
        buf: *mut u8,
        len: usize,
        write: bool,
    ) -> Result<(), BlkError> {
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        let state = AtomicU8::new(IN_FLIGHT);
        let (req_ptr, resp_ptr) = (&raw mut req, &raw mut resp);
        loop {
            let mut q = self.queue.lock();
            // SAFETY: `req`, `resp` and `buf` stay alive and untouched until
            // `state` leaves IN_FLIGHT: this function does not return before
            // (it only reads `state`), and the completer uses them through
            // the `Pending` entry, which describes the same memory.
            let submitted = unsafe {
                if write {
                    let data = core::slice::from_raw_parts(buf, len);
                    q.dev
                        .write_blocks_nb(sector as usize, &mut *req_ptr, data, &mut *resp_ptr)
                } else {
                    let data = core::slice::from_raw_parts_mut(buf, len);
                    q.dev
                        .read_blocks_nb(sector as usize, &mut *req_ptr, data, &mut *resp_ptr)
                }
            };
            match submitted {
                Ok(token) => {
                    q.pending[token as usize] = Some(Pending {
                        req: req_ptr,
                        buf,
                        len,
                        resp: resp_ptr,
                        write,
                        state: &state,
                    });
                    let in_flight = q.pending.iter().filter(|p| p.is_some()).count();
                    self.max_in_flight.fetch_max(in_flight, Ordering::Relaxed);
                    break;
                }
                Err(virtio_drivers::Error::QueueFull) => {
                    q.reap();
                    drop(q);
                    core::hint::spin_loop();
                }
                Err(e) => return Err(BlkError::Driver(e)),
            }
        }
        let submitted_ns = time::now_ns();
        loop {
            match state.load(Ordering::Acquire) {
                IN_FLIGHT => {}
                DONE_OK => return Ok(()),
                _ => return Err(BlkError::Device),
            }
            if let Some(mut q) = self.queue.try_lock() {
                q.reap();
            }
            // A swap read takes ~2 ms under TCG: after a short spin, leave
            // the host core to QEMU's I/O path rather than compete with it.
            if time::now_ns().saturating_sub(submitted_ns) < SPIN_NS {
                core::hint::spin_loop();
            } else {
                time::nap();
            }
        }
    }
}
