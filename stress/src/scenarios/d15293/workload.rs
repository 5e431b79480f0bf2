//! The workload: parent images with clipped anonymous regions, threads that
//! fault (read and write) across swapped and resident pages, one that forks
//! children in a loop (each child checks what it inherited, then exits; when
//! steered, on whichever other CPU takes it first), and a page daemon that
//! keeps memory tight — all of it drawn from one seed.

use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use crate::fork::Region;
use crate::platform::{Platform, Site};
use crate::timers::Bucket;
use crate::variant::Variant;
use crate::vm::{Delay, Res, Td, Vm, VmConfig};

impl Role {
    /// Its name in diagnostics.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Fault => "fault",
            Role::Fork => "fork",
            Role::Pageout => "pageout",
            Role::ForkPageout => "fork+pageout",
            Role::All => "all",
        }
    }

    /// Whether it runs the fork loop (the run's main loop: a host budget
    /// counts its iterations; faults and the page daemon run until it is done).
    pub const fn leads(self) -> bool {
        !matches!(self, Role::Pageout | Role::Fault)
    }
}

/// What one CPU does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Faults on the parents.
    Fault,
    /// Forks children (and clips/remaps parent entries now and then).
    Fork,
    /// The page daemon.
    Pageout,
    /// Fork and pageout, alternating (2 CPUs).
    ForkPageout,
    /// Everything, round-robin (1 CPU).
    All,
}

/// Roles for `ncpus` CPUs.
pub fn roles(ncpus: usize) -> Vec<Role> {
    match ncpus {
        0 | 1 => vec![Role::All],
        2 => vec![Role::ForkPageout, Role::Fault],
        n => {
            let mut r = vec![Role::Fork, Role::Pageout];
            r.resize(n, Role::Fault);
            r
        }
    }
}

/// The workload's parameters.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Seed of every CPU's random stream.
    pub seed: u64,
    /// Layout of every parent image.
    pub regions: Vec<Region>,
    /// Parent images alive at once.
    pub parents: usize,
    /// Chance that a fault-thread access is a store: even-numbered CPUs use
    /// the first rate (writers: dirty pages, copy-on-write), odd ones the
    /// second (readers: clean swap-ins with read-behind).
    pub store_per_64k: [u32; 2],
    /// Loads and stores each child makes before it exits.
    pub child_loads: u32,
    /// Stores each child makes before it exits.
    pub child_stores: u32,
    /// Per fork: chance to clip a parent entry / to replace one.
    pub clip_per_64k: u32,
    /// Per fork: chance to replace a parent entry by a fresh one.
    pub remap_per_64k: u32,
    /// The page daemon keeps at most this many frames in use.
    pub resident_cap: usize,
    /// Fault threads re-pick a page this many times while it is mapped.
    pub cold_tries: u32,
    /// The fork loop pauses up to this long between children (think time).
    pub fork_gap_ns: u64,
    /// Per fork: chance that the parent is replaced by a fresh one.
    pub renew_per_64k: u32,
    /// Steer toward the race window ([`super::steer`]): the fork loop
    /// spends its think time waiting for a fault to park in the pager on an
    /// object the fork will split, then forks. Off: it forks at random.
    pub steer: bool,
    /// The page daemon builds the fork loop's next parent ahead of need.
    pub spare_parent: bool,
}

impl Workload {
    /// Every page of every parent region.
    pub fn vpns(&self) -> impl Iterator<Item = u64> + '_ {
        self.regions.iter().flat_map(|r| r.start..r.start + r.pages)
    }

    /// The default stress workload for `seed`: small enough that every
    /// path is hot, with clipped entries and tight memory.
    pub fn for_seed(seed: u64) -> Self {
        let mut td = Td::new(usize::MAX / 2, seed);
        let clip1 = 8 + td.below(24);
        let clip2 = 40 + td.below(16);
        Workload {
            seed,
            regions: vec![
                Region {
                    start: 0x100,
                    pages: 64,
                    clips: vec![clip1, clip2],
                },
                Region {
                    start: 0x200,
                    pages: 32,
                    clips: vec![],
                },
            ],
            parents: 1,
            store_per_64k: [3_000 + td.below(3_000) as u32, 500 + td.below(1_000) as u32],
            child_loads: 1 + td.below(3) as u32,
            child_stores: td.below(3) as u32,
            clip_per_64k: 0,
            remap_per_64k: 200 + td.below(400) as u32,
            resident_cap: 24,
            cold_tries: 4,
            fork_gap_ns: 200_000,
            renew_per_64k: 1_500 + td.below(2_500) as u32,
            steer: false,
            spare_parent: false,
        }
    }

    /// The same workload, steered toward the window or not.
    pub fn steered(self, steer: bool) -> Self {
        if steer {
            Workload {
                steer,
                parents: STEERED_PARENTS,
                spare_parent: true,
                ..self
            }
        } else {
            Workload { steer, ..self }
        }
    }

    /// A small workload for controlled-scheduler exploration: one parent
    /// with a 16-page region clipped in two, tight memory, short children.
    pub fn small(seed: u64) -> Self {
        let mut td = Td::new(usize::MAX / 2, seed);
        Workload {
            seed,
            regions: vec![Region {
                start: 0x100,
                pages: 16,
                clips: vec![4 + td.below(8)],
            }],
            parents: 1,
            store_per_64k: [16_000, 16_000],
            child_loads: 2,
            child_stores: 0,
            clip_per_64k: 0,
            remap_per_64k: 0,
            resident_cap: 10,
            cold_tries: 0,
            fork_gap_ns: 0,
            renew_per_64k: 0,
            steer: false,
            spare_parent: false,
        }
    }

    /// The machine for a stress run of `variant` on `ncpus` CPUs.
    pub fn vm_config(&self, variant: Variant, ncpus: usize) -> VmConfig {
        let mut td = Td::new(usize::MAX / 3, self.seed);
        VmConfig {
            variant,
            sites: variant.sites(),
            window: variant.scenario().window,
            seed: self.seed,
            ncpus,
            frames: 384,
            pbufs: 1 + td.below(2) as usize,
            image_slots: self.parents * 2 + 2 + if self.steer { PENDING_CHILDREN } else { 0 },
            delays: vec![
                Delay {
                    site: Site::GetpagesPbuf,
                    per_64k: 65_536,
                    max_ns: 1_000_000,
                },
                Delay {
                    site: Site::FaultRelock,
                    per_64k: 4_000,
                    max_ns: 10_000,
                },
                Delay {
                    site: Site::ForkLocked,
                    per_64k: 8_000,
                    max_ns: 10_000,
                },
            ],
        }
    }

    /// A random vpn in the regions, uniform over their pages.
    pub fn random_vpn(&self, td: &mut Td) -> u64 {
        let total: u64 = self.regions.iter().map(|r| r.pages).sum();
        let mut i = td.below(total);
        for r in &self.regions {
            if i < r.pages {
                return r.start + i;
            }
            i -= r.pages;
        }
        self.regions[0].start
    }
}

/// Parents alive at once when steered: the fork loop forks whichever has
/// a window armed, and faults on one go on while the other is forked.
pub const STEERED_PARENTS: usize = 2;

/// Children the steered fork loop leaves to other CPUs at once: a child
/// runs on whichever CPU takes it (as a forked process would), so the fork
/// loop goes back to the window instead of running the child's checks.
pub const PENDING_CHILDREN: usize = 4;

/// The parent images, which the fork loop renews now and then (a process
/// exits and a fresh one takes its place): fault threads read the current
/// ids on every access.
pub struct Parents {
    ids: Vec<AtomicU32>,
    /// A fresh parent built ahead of need ([`NO_SPARE`]: none).
    spare: AtomicU32,
    /// Forked children not run yet ([`NO_SPARE`]: an empty slot).
    children: [AtomicU32; PENDING_CHILDREN],
}

/// No spare parent.
const NO_SPARE: u32 = u32::MAX;

impl Parents {
    /// Parents with the given image ids.
    pub fn new(ids: &[u32]) -> Self {
        Parents {
            ids: ids.iter().map(|&i| AtomicU32::new(i)).collect(),
            spare: AtomicU32::new(NO_SPARE),
            children: [const { AtomicU32::new(NO_SPARE) }; PENDING_CHILDREN],
        }
    }

    /// Leaves child `id` for another CPU to run; false when every slot is
    /// taken.
    fn hand_off(&self, id: u32) -> bool {
        self.children.iter().any(|c| {
            c.compare_exchange(NO_SPARE, id, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Takes a child left by the fork loop, if any.
    fn take_child(&self) -> Option<u32> {
        self.children.iter().find_map(|c| {
            if c.load(Ordering::Relaxed) == NO_SPARE {
                return None;
            }
            let id = c.swap(NO_SPARE, Ordering::AcqRel);
            (id != NO_SPARE).then_some(id)
        })
    }

    fn take_spare(&self) -> Option<u32> {
        let s = self.spare.swap(NO_SPARE, Ordering::AcqRel);
        (s != NO_SPARE).then_some(s)
    }

    fn has_spare(&self) -> bool {
        self.spare.load(Ordering::Acquire) != NO_SPARE
    }

    fn put_spare(&self, id: u32) -> bool {
        self.spare
            .compare_exchange(NO_SPARE, id, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// The current image ids.
    pub fn ids(&self) -> Vec<u32> {
        self.ids.iter().map(|i| i.load(Ordering::Acquire)).collect()
    }

    fn pick(&self, td: &mut Td) -> (usize, u32) {
        let i = td.below(self.ids.len() as u64) as usize;
        (i, self.ids[i].load(Ordering::Acquire))
    }

    fn replace(&self, i: usize, id: u32) -> u32 {
        self.ids[i].swap(id, Ordering::AcqRel)
    }
}

/// A thread's budget: stop after this many iterations (None: until stopped).
pub type Budget = Option<u64>;

impl<P: Platform> Vm<P> {
    /// Creates the parent images (see [`Vm::new_parent`]).
    pub fn setup(&self, td: &mut Td, w: &Workload) -> Res<Parents> {
        let mut ids = Vec::new();
        for _ in 0..w.parents {
            if let Some(id) = self.new_parent(td, w)? {
                ids.push(id);
            }
        }
        Ok(Parents::new(&ids))
    }

    /// A fresh parent image: writes every page once, pages most of it out,
    /// swaps some back in (clean pages with swap copies, contiguous runs)
    /// and trims again — the mix of resident and swapped pages a busy
    /// machine has. `None` when no image slot is free.
    pub fn new_parent(&self, td: &mut Td, w: &Workload) -> Res<Option<u32>> {
        // Built undelayed, whichever CPU builds it.
        td.undelayed(|td| {
            let t0 = self.p.now_ns();
            let r = self.new_parent_timed(td, w);
            self.time_since(td, Bucket::NewParent, t0);
            r
        })
    }

    fn new_parent_timed(&self, td: &mut Td, w: &Workload) -> Res<Option<u32>> {
        let Some(id) = self.create_image(td, &w.regions)? else {
            return Ok(None);
        };
        for vpn in w.vpns() {
            self.store(td, id, vpn)?;
        }
        self.trim(td, w.resident_cap / 2)?;
        for _ in 0..4 {
            let vpn = w.random_vpn(td);
            self.load(td, id, vpn)?;
        }
        self.trim(td, w.resident_cap / 2)?;
        Ok(Some(id))
    }

    /// A fresh parent for the fork loop: the spare one the page daemon
    /// built ahead, or a new one.
    fn fresh_parent(&self, td: &mut Td, w: &Workload, parents: &Parents) -> Res<Option<u32>> {
        match parents.take_spare() {
            Some(id) => Ok(Some(id)),
            None => self.new_parent(td, w),
        }
    }

    /// Replaces parent `slot` by a fresh one (the old one exits); false when
    /// no image slot was free.
    fn renew(&self, td: &mut Td, w: &Workload, parents: &Parents, slot: usize) -> Res<bool> {
        let Some(new) = self.fresh_parent(td, w, parents)? else {
            return Ok(false);
        };
        let old = parents.replace(slot, new);
        self.vmspace_exit(td, old)?;
        Ok(true)
    }

    fn trim(&self, td: &mut Td, target: usize) -> Res<()> {
        let mut rounds = 0;
        while self.resident() > target && rounds < 64 {
            self.pageout_pass(td, 64)?;
            rounds += 1;
        }
        Ok(())
    }

    /// Runs a child the fork loop left, if there is one (true).
    fn run_pending_child(&self, td: &mut Td, w: &Workload, parents: &Parents) -> Res<bool> {
        let Some(child) = parents.take_child() else {
            return Ok(false);
        };
        // The child runs undelayed, as it did on the fork CPU.
        td.undelayed(|td| self.run_child(td, w, child))?;
        Ok(true)
    }

    /// A child's life after fork: it checks some of what it inherited
    /// (loads, stores), then exits.
    fn run_child(&self, td: &mut Td, w: &Workload, child: u32) -> Res<()> {
        let t0 = self.p.now_ns();
        for _ in 0..w.child_loads {
            let vpn = w.random_vpn(td);
            self.load(td, child, vpn)?;
        }
        for _ in 0..w.child_stores {
            let vpn = w.random_vpn(td);
            self.store(td, child, vpn)?;
        }
        self.vmspace_exit(td, child)?;
        self.time_since(td, Bucket::Child, t0);
        Ok(())
    }

    /// One fault-thread access (or a child the fork loop left).
    pub fn fault_op(&self, td: &mut Td, w: &Workload, parents: &Parents) -> Res<()> {
        if self.run_pending_child(td, w, parents)? {
            return Ok(());
        }
        let (_, img) = parents.pick(td);
        // Memory is tight: above the cap, a faulting thread reclaims a
        // little itself before it touches more (direct reclaim).
        if self.resident() > w.resident_cap {
            self.pageout_pass(td, 2)?;
        }
        // Touch cold memory: prefer pages the image has no translation for
        // (a program whose working set exceeds memory), so that accesses
        // fault and swap in rather than hit the pmap.
        let mut vpn = w.random_vpn(td);
        for _ in 0..w.cold_tries {
            if !self.mapped(img, vpn) {
                break;
            }
            vpn = w.random_vpn(td);
        }
        if td.chance(w.store_per_64k[td.cpu % 2]) {
            self.store(td, img, vpn)?;
        } else {
            self.load(td, img, vpn)?;
        }
        Ok(())
    }

    /// One fork-loop iteration: maybe edit a parent's map, fork it, let the
    /// child check some pages, and exit the child.
    pub fn fork_op(&self, td: &mut Td, w: &Workload, parents: &Parents) -> Res<()> {
        let (slot, mut parent) = parents.pick(td);
        if td.chance(w.renew_per_64k) && self.renew(td, w, parents, slot)? {
            // The parent exited; a fresh one took its place.
            return Ok(());
        }
        if w.steer && self.cfg.ncpus > 1 {
            // Fork into the window: the first parent with a fault holding
            // a page of an object this fork splits busy in the pager. Alone
            // on one CPU there is no other fault to wait for.
            let ids = parents.ids();
            let t0 = self.p.now_ns();
            let mut found = self.await_any_window(&ids, super::steer::WAIT_NS);
            // While the page daemon builds the next parent, keep waiting
            // for a window rather than building one here (a few rounds).
            let until = t0.saturating_add(super::steer::SPARE_WAIT_NS);
            while found.is_err()
                && w.spare_parent
                && !parents.has_spare()
                && self.p.now_ns() < until
                && !self.finishing()
            {
                if matches!(found, Err(Some(_))) {
                    // Spent parents: nothing to poll but the spare.
                    self.p.delay(crate::scenarios::POLL_NS);
                }
                found = self.await_any_window(&ids, super::steer::WAIT_NS);
            }
            self.time_since(td, Bucket::Steer, t0);
            match found {
                Ok(i) => parent = ids[i],
                Err(dead) => {
                    // No window opened: that parent's objects are no longer
                    // ones fork splits (or no fault came). A fresh parent's
                    // are.
                    if self.renew(td, w, parents, dead.unwrap_or(slot))? {
                        return Ok(());
                    }
                }
            }
        }
        if td.chance(w.clip_per_64k) {
            let vpn = w.random_vpn(td);
            self.map_clip(td, parent, vpn)?;
        }
        if td.chance(w.remap_per_64k) {
            let vpn = w.random_vpn(td);
            self.map_remap(td, parent, vpn)?;
        }
        let t0 = self.p.now_ns();
        let forked = self.vmspace_fork(td, parent)?;
        self.time_since(td, Bucket::Fork, t0);
        let Some(child) = forked else {
            // No image slot: children are waiting; run one here.
            self.run_pending_child(td, w, parents)?;
            return Ok(());
        };
        // Steered, another CPU runs the child when one is free to.
        if !(w.steer && self.cfg.ncpus > 1 && parents.hand_off(child)) {
            self.run_child(td, w, child)?;
        }
        if w.fork_gap_ns > 0 && !w.steer {
            let ns = td.below(w.fork_gap_ns);
            self.p.delay(ns);
            self.timers.add(td.cpu, Bucket::Delay, ns);
        }
        Ok(())
    }

    /// One page-daemon iteration: reclaim down to the resident cap.
    pub fn pageout_op(&self, td: &mut Td, w: &Workload) -> Res<()> {
        let used = self.resident();
        if used > w.resident_cap {
            self.pageout_pass(td, used - w.resident_cap)?;
        } else {
            let t0 = self.p.now_ns();
            self.p.idle();
            self.time_since(td, Bucket::Idle, t0);
        }
        Ok(())
    }

    /// The page daemon of this workload: when [`Workload::spare_parent`]
    /// asks for it, it first builds the fork loop's next parent ahead of
    /// need (so that the fork loop forks instead of building one when its
    /// parents are spent); otherwise one [`Vm::pageout_op`].
    pub fn daemon_op(&self, td: &mut Td, w: &Workload, parents: &Parents) -> Res<()> {
        if self.run_pending_child(td, w, parents)? {
            return Ok(());
        }
        if w.spare_parent && !parents.has_spare() {
            if let Some(id) = self.new_parent(td, w)?
                && !parents.put_spare(id)
            {
                self.vmspace_exit(td, id)?;
            }
            return Ok(());
        }
        self.pageout_op(td, w)
    }

    /// Runs `role` until the run stops or the budget is spent.
    pub fn run_role(
        &self,
        td: &mut Td,
        w: &Workload,
        parents: &Parents,
        role: Role,
        budget: Budget,
    ) -> Res<()> {
        self.run_role_with(td, w, parents, role, budget, |_| {})
    }

    /// [`Vm::run_role`], calling `after` (the platform's chance to report
    /// progress or end the run) after every iteration.
    pub fn run_role_with(
        &self,
        td: &mut Td,
        w: &Workload,
        parents: &Parents,
        role: Role,
        budget: Budget,
        mut after: impl FnMut(&Self),
    ) -> Res<()> {
        // Delays widen the windows of the threads that fault; the fork loop
        // runs undelayed so that it forks often.
        td.delays = !matches!(role, Role::Fork | Role::ForkPageout);
        let mut i = 0u64;
        while budget.is_none_or(|b| i < b) && !self.finishing() {
            self.check()?;
            match role {
                Role::Fault => self.fault_op(td, w, parents)?,
                Role::Fork => self.fork_op(td, w, parents)?,
                Role::Pageout => self.daemon_op(td, w, parents)?,
                Role::ForkPageout => {
                    if i.is_multiple_of(2) {
                        self.fork_op(td, w, parents)?
                    } else {
                        self.daemon_op(td, w, parents)?
                    }
                }
                Role::All => match i % 6 {
                    0 => self.fork_op(td, w, parents)?,
                    1 => self.daemon_op(td, w, parents)?,
                    _ => self.fault_op(td, w, parents)?,
                },
            }
            self.beat(td);
            after(self);
            i += 1;
        }
        Ok(())
    }

    /// Exits every image (quiescent: no other thread runs). Afterwards every
    /// frame and swap block must be free again.
    pub fn teardown(&self, td: &mut Td) -> Res<()> {
        for id in self.images.live() {
            self.vmspace_exit(td, id)?;
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::testutil;

    /// The steered fork loop's hand-off: at most [`PENDING_CHILDREN`]
    /// children wait, each is taken exactly once.
    #[test]
    fn children_are_handed_off_and_taken_once() {
        let p = Parents::new(&[1, 2]);
        assert_eq!(p.take_child(), None);
        let ids: Vec<u32> = (10..10 + PENDING_CHILDREN as u32).collect();
        for &id in &ids {
            assert!(p.hand_off(id), "slot for child {id}");
        }
        assert!(!p.hand_off(99), "every slot taken");
        let mut taken: Vec<u32> = core::iter::from_fn(|| p.take_child()).collect();
        taken.sort_unstable();
        assert_eq!(taken, ids);
        assert!(p.hand_off(7));
        assert_eq!(p.take_child(), Some(7));
    }

    /// Thousands of random operations on one thread, with the books
    /// audited every few hundred and after tearing everything down.
    #[test]
    fn conservation_holds_after_random_operations() {
        for seed in 0..4u64 {
            let w = Workload::for_seed(seed);
            let vm = testutil::vm(crate::scenarios::d15293::BASELINE, 192);
            let mut td = Td::new(0, seed);
            let parents = vm.setup(&mut td, &w).unwrap();
            let mut children = Vec::new();
            for op in 0..3000u32 {
                match td.below(10) {
                    0 if children.len() < 2 => {
                        if let Some(c) = vm.vmspace_fork(&mut td, parents.ids()[0]).unwrap() {
                            children.push(c);
                        }
                    }
                    1 if !children.is_empty() => {
                        let c = children.swap_remove(td.below(children.len() as u64) as usize);
                        vm.vmspace_exit(&mut td, c).unwrap();
                    }
                    2 => {
                        vm.pageout_pass(&mut td, 8).unwrap();
                    }
                    3 if td.chance(4000) => {
                        let vpn = w.random_vpn(&mut td);
                        vm.map_remap(&mut td, parents.ids()[0], vpn).unwrap();
                    }
                    4 if td.chance(8000) => {
                        let vpn = w.random_vpn(&mut td);
                        vm.map_clip(&mut td, parents.ids()[0], vpn).unwrap();
                    }
                    k => {
                        let img = if k % 2 == 0 || children.is_empty() {
                            parents.ids()[0]
                        } else {
                            children[td.below(children.len() as u64) as usize]
                        };
                        let vpn = w.random_vpn(&mut td);
                        let r = if td.chance(20_000) {
                            vm.store(&mut td, img, vpn)
                        } else {
                            vm.load(&mut td, img, vpn)
                        };
                        assert!(r.is_ok(), "seed {seed} op {op}: {:?}", vm.failure());
                    }
                }
                if op % 250 == 0
                    && let Err(e) = vm.check_conservation()
                {
                    panic!("seed {seed} op {op}: {e}");
                }
            }
            vm.teardown(&mut td).unwrap();
            let c = vm.check_conservation().unwrap();
            assert_eq!(
                (c.free_frames, c.swap_used, c.objects),
                (192, 0, 0),
                "seed {seed}"
            );
            let s = vm.counters.snapshot();
            assert!(
                s.forks > 100 && s.swapins > 50 && s.collapses > 0,
                "seed {seed}: {s:?}"
            );
        }
    }
}
