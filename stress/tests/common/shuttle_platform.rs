//! The model's platform under shuttle (for the PCT explorations): every
//! lock attempt and named site is a scheduling point, every wait loop turn
//! a yield; time is a counter.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use stress::platform::{IoError, PAGE_SIZE, Platform};

/// The model's platform under shuttle: every lock attempt and named site is
/// a scheduling point, every wait loop turn a yield; time is a counter.
pub struct ShuttlePlatform {
    clock: AtomicU64,
    point: shuttle::sync::atomic::AtomicUsize,
    disk: Mutex<Vec<Option<Box<[u8; PAGE_SIZE]>>>>,
}

impl ShuttlePlatform {
    pub fn new(pages: usize) -> Self {
        ShuttlePlatform {
            clock: AtomicU64::new(0),
            point: shuttle::sync::atomic::AtomicUsize::new(0),
            disk: Mutex::new((0..pages).map(|_| None).collect()),
        }
    }
}

impl Platform for ShuttlePlatform {
    fn now_ns(&self) -> u64 {
        self.clock.fetch_add(1000, Ordering::Relaxed)
    }
    fn pause(&self) {
        shuttle::thread::yield_now();
    }
    fn delay(&self, _ns: u64) {
        shuttle::thread::yield_now();
    }
    fn site(&self, _cpu: usize, _site: stress::Site) {
        self.preempt();
    }
    fn preempt(&self) {
        self.point.fetch_add(1, Ordering::SeqCst);
    }
    fn swap_pages(&self) -> u64 {
        self.disk.lock().unwrap().len() as u64
    }
    fn swap_read(&self, blk: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let d = self.disk.lock().unwrap();
        for (i, dst) in buf.chunks_mut(PAGE_SIZE).enumerate() {
            match d.get(blk as usize + i) {
                Some(Some(p)) => dst.copy_from_slice(&p[..]),
                Some(None) => dst.fill(0),
                None => return Err(IoError { blk, pages: 1 }),
            }
        }
        Ok(())
    }
    fn swap_write(&self, blk: u64, buf: &[u8]) -> Result<(), IoError> {
        let mut d = self.disk.lock().unwrap();
        for (i, src) in buf.chunks(PAGE_SIZE).enumerate() {
            let slot = d
                .get_mut(blk as usize + i)
                .ok_or(IoError { blk, pages: 1 })?;
            let mut p = Box::new([0u8; PAGE_SIZE]);
            p.copy_from_slice(src);
            *slot = Some(p);
        }
        Ok(())
    }
}
