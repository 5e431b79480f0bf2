//! Steering the workload toward the race window, in the spirit of Razzer
//! and Snowboard: instead of forking at a random moment, the fork loop
//! forks when the parent has a fault parked in `swap_pager_getpages` with a
//! read-behind wish on an object fork will split (anonymous, `ONEMAPPING`).
//! That fault holds a reference (so split really splits) and its page
//! stays busy while the pager reads it (so split meets a busy page: the
//! window). Workload-level and blind to the variant: it reads object state
//! every variant has, with try-locks that never wait and change nothing.
//!
//! Steered, the workload keeps two parents (faults on one go on while the
//! other is forked) and forks the first with a window armed. A parent on
//! which no window can open any more (no entry's object is one fork splits
//! with pages on swap) is replaced at once, one on which none opened within
//! [`WAIT_NS`] too: by the spare parent the page daemon built ahead when
//! there is one (the fork loop waits up to [`SPARE_WAIT_NS`] for it rather
//! than building one itself).
//!
//! Where the time went before (kernel, TCG, loaded 2-core host, 4 vCPUs,
//! swap-prealloc, `stress::timers`): the fork CPU ~37% building fresh
//! parents, ~18% waiting for a window, the rest forking (split asleep on
//! the parked fault's busy page) and in the child's checks; each fault CPU
//! ~25% waiting for the parent's map lock while it was forked, and swap-ins
//! queued behind 1-2 pbufs at ~2 ms a virtio read.
//!
//! Measured (`cargo xtask --kernel K bench stress --accel tcg`, before and
//! after, interleaved twice, load ~8.5 on 2 cores, 2026-12-02): steered
//! 9.9 and 9.7 → 42.0 and 48.1 window hits/s (about 1.0 hit per fork
//! either way; forks/s 10 → 40-50); unsteered 2.0/8.4 → 2.0/24.9.
//!
//! Steered, the fork loop also hands each child to whichever other CPU
//! takes it first (`PENDING_CHILDREN` may wait) and goes straight back to
//! the window: a child's checks had been ~37% of the fork CPU's time once
//! waits halted in the kernel. After both (the kernel's waits halting,
//! children handed off), the fork CPU spends ~40% waiting for a window to
//! arm, ~45% forking (of which ~30% split asleep on the parked fault's
//! busy page) and ~11% building parents: windows now arm too slowly for
//! it, not the other way round.

use crate::object::{NOSPLIT, ONEMAPPING};
use crate::platform::Platform;
use crate::vm::Vm;

/// How long the fork loop waits for the window: a few times the longest a
/// fault parks before taking its pbuf (the workload's `getpages-pbuf`
/// delay), so that a parent that can still open one usually does
/// meanwhile. Measured under TCG with a 2 ms delay and one parent (4 × 3 s,
/// interleaved): 0.5 ms 0.6×, 2 ms 1.8×, 4 ms 2.2×, 8 ms 1.7× the
/// unsteered hits/s; not re-measured with the 1 ms delay and two parents.
pub const WAIT_NS: u64 = 4_000_000;

/// What one look at an image found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Look {
    /// A fault is parked in the pager with a read-behind wish on an object
    /// fork would split: fork now.
    pub armed: bool,
    /// Some entry's object is one fork would split and has pages on swap
    /// (or a lock was busy, so it may): a window can still open here.
    pub possible: bool,
}

/// How long the fork loop keeps waiting for a window (or for the spare
/// parent) while the page daemon builds the next parent, before it builds
/// one itself.
pub const SPARE_WAIT_NS: u64 = 16_000_000;

impl<P: Platform> Vm<P> {
    /// Looks at image `img`'s entries with try-locks (never waits, changes
    /// nothing): is a window armed, can one still open?
    pub fn look(&self, img: u32) -> Look {
        let Some(map) = self.images.get(img).map.lock.try_read() else {
            return Look {
                armed: false,
                possible: true,
            };
        };
        let mut look = Look::default();
        for e in map.entries.values() {
            let Some(g) = e.object.lock.try_lock() else {
                look.possible = true;
                continue;
            };
            let splits = g.anonymous() && g.flags & (NOSPLIT | ONEMAPPING) == ONEMAPPING;
            if splits && g.rbehind_inflight > 0 {
                look.armed = true;
                look.possible = true;
                return look;
            }
            look.possible |= splits && !g.swblk.is_empty();
        }
        look
    }

    /// Waits until one of `imgs` has its window armed, at most `max_ns`:
    /// `Ok(i)` for the first armed `imgs[i]`. `Err(Some(i))` as soon as no
    /// window can open on any of them any more (`imgs[i]` the first such),
    /// `Err(None)` when the time ran out (or the run is finishing).
    pub fn await_any_window(&self, imgs: &[u32], max_ns: u64) -> Result<usize, Option<usize>> {
        self.poll_for(max_ns, || {
            let mut dead = None;
            let mut any_possible = false;
            for (i, &img) in imgs.iter().enumerate() {
                let l = self.look(img);
                if l.armed {
                    return Some(Ok(i));
                }
                any_possible |= l.possible;
                if !l.possible && dead.is_none() {
                    dead = Some(i);
                }
            }
            (!any_possible).then_some(Err(dead))
        })
        .unwrap_or(Err(None))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::host::{HostPlatform, HostRun, drive};
    use crate::object::ONEMAPPING;
    use crate::run::Driver;
    use crate::scenarios::Knobs;
    use crate::scenarios::d15293::{BASELINE, SWAP_PREALLOC};
    use crate::testutil;

    /// swap-prealloc on 4 host threads, steered or not, until the fork
    /// loop did `budget` iterations.
    fn run(seed: u64, steer: bool, budget: u64) -> HostRun {
        let d = Driver::with_config(
            HostPlatform::new(4096),
            SWAP_PREALLOC,
            seed,
            Knobs { steer },
            4,
            20_000_000_000,
            |_| {},
        );
        drive(d, Some(budget))
    }

    /// Armed exactly while a read-behind swap-in is in flight on an object
    /// fork would split.
    #[test]
    fn armed_only_with_a_read_behind_in_flight_on_a_splittable_object() {
        let vm = testutil::vm(BASELINE, 64);
        let mut td = testutil::td();
        let img = testutil::image(&vm, &mut td, 8, &[4]);
        assert!(!vm.look(img).armed);
        let (obj, _) = vm.entry_object(&td, img, 0x105).unwrap().unwrap();
        {
            let mut g = obj.lock.lock();
            g.rbehind_inflight += 1;
            g.flags |= ONEMAPPING;
        }
        assert!(vm.look(img).armed);
        assert!(vm.await_any_window(&[img], 1).is_ok());
        obj.lock.lock().flags &= !ONEMAPPING;
        assert!(!vm.look(img).armed, "not splittable: no window");
        // A busy lock never blocks the fork loop.
        let g = obj.lock.lock();
        assert!(!vm.look(img).armed);
        drop(g);
        // Nothing in flight: the wait gives up after its time.
        obj.lock.lock().rbehind_inflight -= 1;
        assert!(vm.await_any_window(&[img], 100_000).is_err());
    }

    /// A window can still open only on an object fork splits that has
    /// pages on swap; a shared one (no `ONEMAPPING`) cannot.
    #[test]
    fn possible_only_with_swap_on_a_splittable_object() {
        let vm = testutil::vm(BASELINE, 64);
        let mut td = testutil::td();
        let img = testutil::image(&vm, &mut td, 8, &[4]);
        let (obj, _) = vm.entry_object(&td, img, 0x105).unwrap().unwrap();
        assert!(!vm.look(img).possible, "nothing on swap: no window");
        obj.lock.lock().swblk.insert(5, 0);
        assert!(vm.look(img).possible);
        assert!(!vm.look(img).armed);
        obj.lock.lock().flags &= !ONEMAPPING;
        assert!(!vm.look(img).possible, "not splittable: no window");
        // Nothing possible: the wait gives up at once, naming the image.
        assert_eq!(vm.await_any_window(&[img], 1_000_000_000), Err(Some(0)));
        obj.lock.lock().swblk.clear();
    }

    /// A steered run on host threads keeps the books: no failure for the
    /// fix, every frame and swap block accounted for, windows opened.
    #[test]
    fn a_steered_run_keeps_the_books() {
        let r = run(3, true, 150);
        assert!(r.failure.is_none(), "{:?}", r.failure);
        let (_, after) = r.census.expect("audited: conservation holds");
        assert_eq!(after.swap_used, 0, "{after:?}");
        assert!(r.stats.forks > 0 && r.stats.faults > 0, "{:?}", r.stats);
    }

    /// Window hits per fork with and without steering, on host threads
    /// (`cargo test -p stress --release steer -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn hits_per_fork_on_host_threads() {
        for steer in [false, true] {
            let (mut hits, mut forks, mut faults, mut ms) = (0, 0, 0, 0);
            for seed in 1..=4u64 {
                let r = run(seed, steer, 1500);
                assert!(r.failure.is_none(), "{:?}", r.failure);
                hits += r.stats.window_hits;
                forks += r.stats.forks;
                faults += r.stats.faults;
                ms += r.elapsed.as_millis() as u64;
            }
            std::println!(
                "steer {steer}: {hits} hits, {forks} forks, {faults} faults in {ms} ms: {:.3} hits/fork, {:.0} hits/s",
                hits as f64 / forks as f64,
                hits as f64 * 1e3 / ms as f64
            );
        }
    }
}
