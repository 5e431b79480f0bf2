//! Steering the collapse workload toward its race window: instead of
//! letting a random child exit at a random moment, the tree loop waits
//! until a fault of the parent sleeps on a busy page of a backing object
//! `O` directly below one of the parent's top objects `T` (a swap-in with
//! read-behind in flight on `O`), and then exits the child that holds `O`'s
//! only other reference — so that `O` collapses into `T` while that fault
//! is between its sleep and its retry (`docs/scenarios/collapse.md`).
//!
//! Workload-level and blind to the variant: it reads what every variant
//! has — map entries, backing pointers, reference counts, and which CPU
//! sleeps on a busy page of which object (the model's published waits, the
//! analogue of a busy page's waiters bit) — with try-locks that never wait
//! and change nothing. When no fault sleeps there within [`WAIT_NS`], the
//! tree goes on at random.

use alloc::sync::Arc;

use crate::object::VmObject;
use crate::platform::Platform;
use crate::vm::{Vm, Wait};

/// How long the tree loop waits for a fault to sleep below a collapsible
/// top object before it goes on at random.
pub const WAIT_NS: u64 = 4_000_000;

impl<P: Platform> Vm<P> {
    /// Whether some CPU sleeps on a busy page of object `obj_id`.
    fn busy_waited(&self, obj_id: u32) -> bool {
        (0..self.cfg.ncpus)
            .any(|c| matches!(self.wait_of(c), Wait::Busy { obj, .. } if obj == obj_id))
    }

    /// A child among `kids` whose exit would collapse the backing object
    /// `O` of one of `parent`'s top objects into it: `O` has two
    /// references, and the child's entry maps `O` itself or a shadow of `O`
    /// that only it references. With `slept_on`, only an `O` on whose busy
    /// page some CPU sleeps (armed). `None` when a lock is busy (never
    /// waits).
    pub fn collapse_exit_candidate(
        &self,
        parent: u32,
        kids: &[u32],
        slept_on: bool,
    ) -> Option<u32> {
        if slept_on && !(0..self.cfg.ncpus).any(|c| matches!(self.wait_of(c), Wait::Busy { .. })) {
            // Nobody sleeps on a busy page: no lock need be tried.
            return None;
        }
        let map = self.images.get(parent).map.lock.try_read()?;
        for e in map.entries.values() {
            let Some(o) = e.object.lock.try_lock().and_then(|g| g.backing.clone()) else {
                continue;
            };
            if slept_on && !self.busy_waited(o.id) {
                continue;
            }
            let two_refs = o
                .lock
                .try_lock()
                .is_some_and(|g| g.ref_count == 2 && g.anonymous() && !g.dead());
            if !two_refs {
                continue;
            }
            if let Some(k) = kids.iter().copied().find(|&k| self.holds(k, e.start, &o)) {
                return Some(k);
            }
        }
        None
    }

    /// Whether image `kid`'s entry at `start` references `o`, directly or
    /// through a shadow that only that entry references.
    fn holds(&self, kid: u32, start: u64, o: &Arc<VmObject>) -> bool {
        let Some(map) = self.images.get(kid).map.lock.try_read() else {
            return false;
        };
        let Some(e) = map.lookup_entry(start) else {
            return false;
        };
        if Arc::ptr_eq(&e.object, o) {
            return true;
        }
        e.object.lock.try_lock().is_some_and(|g| {
            g.ref_count == 1
                && g.shadow_count == 0
                && g.backing.as_ref().is_some_and(|b| Arc::ptr_eq(b, o))
        })
    }

    /// A vpn of `parent` whose page is being read in (busy, swap-in in
    /// progress) in the backing object `O` of one of its top objects `T`,
    /// where `T` has no page of its own and `O` has one other reference —
    /// the page a second fault of the parent would sleep on. `None` when
    /// there is none or a lock is busy (never waits).
    pub fn paging_in_below(&self, parent: u32) -> Option<u64> {
        let map = self.images.get(parent).map.lock.try_read()?;
        for e in map.entries.values() {
            let Some(tg) = e.object.lock.try_lock() else {
                continue;
            };
            let Some(o) = tg.backing.clone() else {
                continue;
            };
            let Some(og) = o.lock.try_lock() else {
                continue;
            };
            if og.ref_count != 2 || !og.anonymous() || og.dead() {
                continue;
            }
            let (lo, len) = (e.offset + tg.backing_offset, e.end - e.start);
            let found = og.pages.range(lo..lo + len).find_map(|(&p, pg)| {
                let tp = p - tg.backing_offset;
                (pg.swapinprog && tg.lookup(tp).is_none()).then_some(e.start + (tp - e.offset))
            });
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Waits (pausing, holding no lock) until a child's exit would collapse
    /// an object a fault of `parent` sleeps on, at most `max_ns`: that
    /// child.
    pub fn await_collapse_window(&self, parent: u32, kids: &[u32], max_ns: u64) -> Option<u32> {
        self.poll_for(max_ns, || self.collapse_exit_candidate(parent, kids, true))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use std::string::{String, ToString};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::{Duration, Instant};
    use std::vec;
    use std::vec::Vec;

    use crate::failure::{Failure, FailureKind};
    use crate::fork::Region;
    use crate::host::{HostPlatform, Script, drive};
    use crate::platform::Site;
    use crate::run::Driver;
    use crate::scenarios::Knobs;
    use crate::scenarios::collapse::workload::{Tree, roles};
    use crate::scenarios::collapse::{D22908, R357091_BEFORE};
    use crate::stats::Stats;
    use crate::variant::Variant;
    use crate::vm::{Td, Vm, VmConfig, Wait};

    const BASE: u64 = 0x100;
    /// The page the sleeping fault wants; the swap-in is of `I + 1`.
    const I: u64 = 10;
    const T: Duration = Duration::from_secs(10);

    type HostVm = Vm<HostPlatform>;

    /// Polls `f` until it holds or `T` passes.
    fn eventually(mut f: impl FnMut() -> bool) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < T {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        f()
    }

    /// A 4-CPU machine without injected delays.
    fn machine(variant: Variant, script: Option<Arc<Script>>) -> HostVm {
        let cfg = VmConfig {
            frames: 96,
            ..VmConfig::small(variant, 0x357091, 4)
        };
        let p = match script {
            Some(s) => HostPlatform::scripted(1024, s),
            None => HostPlatform::new(1024),
        };
        Vm::new(p, cfg)
    }

    /// Parent `P` (16 pages: 10 and 11 on swap only, the others resident)
    /// forks `C`; `P` writes page 15, so its entry gets a top object `T`
    /// over `O`, which `C` still maps. Returns (P, C, O's id).
    fn parent_and_child(vm: &HostVm, td: &mut Td) -> (u32, u32, u32) {
        let region = [Region {
            start: BASE,
            pages: 16,
            clips: vec![],
        }];
        let parent = vm.create_image(td, &region).unwrap().unwrap();
        for i in 0..16 {
            assert!(vm.store(td, parent, BASE + i).unwrap());
        }
        assert_eq!(vm.evict(td, parent, BASE, true).unwrap(), 16);
        assert!(vm.load(td, parent, BASE).unwrap());
        assert_eq!(vm.evict(td, parent, BASE + I, false).unwrap(), 1);
        assert_eq!(vm.evict(td, parent, BASE + I + 1, false).unwrap(), 1);
        let child = vm.vmspace_fork(td, parent).unwrap().unwrap();
        let (o, _) = vm.entry_object(td, parent, BASE).unwrap().unwrap();
        assert!(vm.store(td, parent, BASE + 15).unwrap(), "parent's COW");
        let (t, _) = vm.entry_object(td, parent, BASE).unwrap().unwrap();
        assert!(!Arc::ptr_eq(&t, &o), "the parent has a top object over O");
        (parent, child, o.id)
    }

    /// A candidate needs a child holding `O`'s only other reference; it is
    /// armed only while a CPU sleeps on a busy page of `O`, and a busy
    /// lock never blocks the tree loop.
    #[test]
    fn armed_only_while_a_fault_sleeps_below_a_collapsible_top() {
        let vm = machine(R357091_BEFORE, None);
        let mut td = Td::new(0, 1);
        let (parent, child, o) = parent_and_child(&vm, &mut td);
        let o_obj = vm.entry_object(&td, child, BASE).unwrap().unwrap().0;
        assert_eq!(o_obj.id, o, "C maps O itself (it never wrote)");
        assert_eq!(
            vm.collapse_exit_candidate(parent, &[child], false),
            Some(child)
        );
        assert_eq!(
            vm.collapse_exit_candidate(parent, &[child], true),
            None,
            "nobody sleeps"
        );
        assert_eq!(vm.await_collapse_window(parent, &[child], 100_000), None);
        let sleeper = Td::new(2, 1);
        {
            let _w = vm.waiting(
                &sleeper,
                Wait::Busy {
                    obj: o,
                    pindex: I as u32,
                },
            );
            assert_eq!(
                vm.collapse_exit_candidate(parent, &[child], true),
                Some(child)
            );
            assert_eq!(vm.await_collapse_window(parent, &[child], 0), Some(child));
            // O's lock busy: not armed, and no wait.
            let g = o_obj.lock.lock();
            assert_eq!(vm.collapse_exit_candidate(parent, &[child], true), None);
            drop(g);
        }
        assert_eq!(
            vm.collapse_exit_candidate(parent, &[child], true),
            None,
            "woke"
        );
        let (top, _) = vm.entry_object(&td, parent, BASE).unwrap().unwrap();
        {
            let _w = vm.waiting(
                &sleeper,
                Wait::Busy {
                    obj: top.id,
                    pindex: 15,
                },
            );
            assert_eq!(
                vm.collapse_exit_candidate(parent, &[child], true),
                None,
                "T is no backing object"
            );
        }
        // C forks G: O has three references, no exit collapses it.
        let g = vm.vmspace_fork(&mut td, child).unwrap().unwrap();
        let _w = vm.waiting(
            &sleeper,
            Wait::Busy {
                obj: o,
                pindex: I as u32,
            },
        );
        assert_eq!(vm.collapse_exit_candidate(parent, &[child, g], true), None);
        // C writes page 3: its entry shadows O (only C references that
        // shadow) — C still holds O's other reference once G is gone.
        vm.vmspace_exit(&mut td, g).unwrap();
        assert!(vm.store(&mut td, child, BASE + 3).unwrap());
        assert_ne!(vm.entry_object(&td, child, BASE).unwrap().unwrap().0.id, o);
        assert_eq!(
            vm.collapse_exit_candidate(parent, &[g, child], true),
            Some(child)
        );
    }

    /// The steer acts: with a swap-in of `O` held in its I/O the tree loop
    /// keeps waiting; once a second fault of the parent sleeps on `O`'s busy
    /// page it exits `C`, whose exit collapses `O` into `T` while that fault
    /// is between its sleep and its retry. Which variant loses the page is
    /// the oracles' verdict.
    fn steered_exit(variant: Variant) -> (Option<Failure>, Stats, Option<u32>) {
        let script = Script::new();
        let vm = machine(variant, Some(script.clone()));
        let mut td = Td::new(0, 1);
        let (parent, child, _) = parent_and_child(&vm, &mut td);
        script.hold(1, Site::GetpagesIo);
        script.hold(2, Site::FaultBusyRetry);
        let go_b = AtomicBool::new(false);
        let chose = AtomicU32::new(u32::MAX);
        let conducted: Result<(), String> = std::thread::scope(|s| {
            let (vm, go_b, chose) = (&vm, &go_b, &chose);
            s.spawn(move || vm.load(&mut Td::new(1, 1), parent, BASE + I + 1));
            s.spawn(move || {
                while !go_b.load(Ordering::SeqCst) {
                    vm.check()?;
                    std::thread::sleep(Duration::from_micros(100));
                }
                vm.load(&mut Td::new(2, 1), parent, BASE + I)
            });
            s.spawn(move || {
                let mut td = Td::new(3, 1);
                if let Some(k) = vm.await_collapse_window(parent, &[child], 20_000_000_000) {
                    chose.store(k, Ordering::SeqCst);
                    vm.vmspace_exit(&mut td, k)?;
                }
                Ok::<bool, crate::vm::Stop>(true)
            });
            let r = (|| {
                if !script.wait_parked(1, Site::GetpagesIo, T) {
                    return Err("no swap-in".to_string());
                }
                // A steered fault thread would touch the read-behind page.
                if vm.paging_in_below(parent) != Some(BASE + I) {
                    return Err(std::format!(
                        "paging in below T: {:?}",
                        vm.paging_in_below(parent)
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
                if chose.load(Ordering::SeqCst) != u32::MAX {
                    return Err("exited with no fault asleep on O".to_string());
                }
                go_b.store(true, Ordering::SeqCst);
                if !eventually(
                    || matches!(vm.wait_of(3), Wait::Busy { pindex, .. } if pindex as u64 == I),
                ) {
                    return Err(std::format!(
                        "no collapse scan asleep on O: {:?}",
                        vm.waits()
                    ));
                }
                script.release(1, Site::GetpagesIo);
                if !script.wait_parked(2, Site::FaultBusyRetry, T) {
                    return Err("the fault never woke".to_string());
                }
                if !eventually(|| vm.counters.snapshot().collapses >= 1 || vm.failure().is_some()) {
                    return Err("no collapse".to_string());
                }
                script.release(2, Site::FaultBusyRetry);
                Ok(())
            })();
            if r.is_err() {
                vm.request_stop();
                script.release_all();
            }
            r
        });
        conducted.unwrap();
        if vm.failure().is_none() {
            for i in 0..16 {
                let _ = vm.load(&mut td, parent, BASE + i);
            }
        }
        let k = chose.load(Ordering::SeqCst);
        (
            vm.failure(),
            vm.counters.snapshot(),
            (k != u32::MAX).then_some(k),
        )
    }

    #[test]
    fn the_steered_exit_loses_r357091_befores_page() {
        let (f, stats, chose) = steered_exit(R357091_BEFORE);
        let f = f.expect("caught");
        assert_eq!(f.kind, FailureKind::StaleData, "{f}");
        assert_eq!(f.cpu, 2, "the retrying fault reads the lost page: {f}");
        assert!(
            chose.is_some() && stats.collapses == 1,
            "{chose:?} {stats:?}"
        );
        assert!(stats.window_hits >= 1, "{stats:?}");
    }

    #[test]
    fn the_steered_exit_leaves_d22908_clean() {
        let (f, stats, chose) = steered_exit(D22908);
        assert_eq!(f, None);
        assert!(
            chose.is_some() && stats.collapses == 1,
            "{chose:?} {stats:?}"
        );
        assert!(stats.window_hits >= 1, "{stats:?}");
    }

    /// A steered tree on host threads keeps the books (the fixed variant:
    /// no failure, every frame and swap block accounted for).
    #[test]
    fn a_steered_tree_keeps_the_books() {
        let d = Driver::with_config(
            HostPlatform::new(4096),
            D22908,
            1,
            Knobs { steer: true },
            4,
            20_000_000_000,
            |_| {},
        );
        let r = drive(d, Some(300));
        assert!(
            r.failure.is_none() && r.hang.is_none(),
            "{:?} {:?}",
            r.failure,
            r.hang
        );
        let (_, after) = r.census.expect("audited: conservation holds");
        assert_eq!(after.swap_used, 0, "{after:?}");
        assert!(r.stats.exits > 0 && r.stats.faults > 0, "{:?}", r.stats);
    }

    /// What a tree run on host threads did.
    #[derive(Debug)]
    struct Out {
        failure: Option<Failure>,
        stats: Stats,
        steered: u64,
        unarmed: u64,
    }

    /// The collapse workload for `seed` on 4 host threads, steered or not,
    /// until the tree loop did `budget` steps.
    fn run(variant: Variant, seed: u64, steer: bool, budget: u64) -> Out {
        let t = Tree::for_seed(seed).steered(steer);
        let vm = Vm::new(HostPlatform::new(4096), t.vm_config(variant, 4));
        let mut td = Td::new(0, seed);
        let st = t.setup(&vm, &mut td).expect("setup");
        vm.restart_clock();
        std::thread::scope(|s| {
            for (cpu, role) in roles(4).into_iter().enumerate() {
                let (t, vm, st) = (&t, &vm, &st);
                s.spawn(move || {
                    let mut td = Td::new(cpu, seed);
                    let b = role.leads().then_some(budget);
                    let _ = t.run_role(vm, &mut td, st, role, b, &mut |_| {});
                    if role.leads() {
                        vm.request_finish();
                    }
                });
            }
        });
        Out {
            failure: vm.failure(),
            stats: vm.counters.snapshot(),
            steered: st.steered.load(Ordering::Relaxed),
            unarmed: st.unarmed.load(Ordering::Relaxed),
        }
    }

    /// Steered against unsteered on host threads
    /// (`cargo test -p stress --release collapse::steer -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn steered_against_unsteered_on_host_threads() {
        for v in [R357091_BEFORE, D22908] {
            for steer in [false, true] {
                let mut rows = Vec::new();
                let (mut caught, mut hits, mut exits, mut steered, mut unarmed, mut ms) =
                    (0, 0, 0, 0, 0, 0u128);
                for seed in 0..8u64 {
                    let t0 = std::time::Instant::now();
                    let o = run(v, seed, steer, 3000);
                    ms += t0.elapsed().as_millis();
                    caught += o.failure.is_some() as u32;
                    hits += o.stats.window_hits;
                    exits += o.stats.exits;
                    steered += o.steered;
                    unarmed += o.unarmed;
                    rows.push((
                        o.failure.map(|f| f.kind.name()),
                        o.stats.window_hits,
                        o.steered,
                    ));
                }
                std::println!(
                    "{v} steer {steer}: caught {caught}/8, {hits} hits, {exits} exits, \
                     {steered} steered, {unarmed} unarmed, {ms} ms: {rows:?}"
                );
            }
        }
    }
}
