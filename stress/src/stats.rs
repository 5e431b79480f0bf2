//! Run counters: what the model did and what the oracles counted.
//!
//! `Counters` is the live, per-CPU form (relaxed atomics, one block per CPU so
//! CPUs do not fight over cache lines); `Stats` is a plain snapshot that goes
//! into progress records and reports. Both are generated from one list.

use core::sync::atomic::{AtomicU64, Ordering};
use serde::{Deserialize, Serialize};

macro_rules! counters {
    ($( $(#[$meta:meta])* $name:ident ),* $(,)?) => {
        /// Names one counter.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Counter {
            $(
                #[doc = concat!("The counter [`Stats::", stringify!($name), "`].")]
                $name
            ),*
        }

        impl Counter {
            /// Every counter, in declaration order.
            pub const ALL: &'static [Counter] = &[$( Counter::$name ),*];
            /// The counter's field name in `Stats`.
            pub const fn name(self) -> &'static str {
                match self { $( Counter::$name => stringify!($name) ),* }
            }
        }

        /// A snapshot of every counter (summed over CPUs).
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Stats { $( $(#[$meta])* pub $name: u64 ),* }

        impl Stats {
            /// The value of one counter.
            pub fn get(&self, c: Counter) -> u64 {
                match c { $( Counter::$name => self.$name ),* }
            }
            fn slot(&mut self, c: Counter) -> &mut u64 {
                match c { $( Counter::$name => &mut self.$name ),* }
            }
        }

        const NCOUNTERS: usize = [$( stringify!($name) ),*].len();
    };
}

counters! {
    /// vmspace_fork calls completed.
    forks,
    /// Child images that exited.
    exits,
    /// vm_object_split calls that really split (new object made).
    splits,
    /// Pages renamed into a new object by split.
    split_pages_moved,
    /// Times split slept on a busy page.
    split_busy_sleeps,
    /// Times split waited for paging-in-progress (split-pipwait).
    split_pip_waits,
    /// Backing objects collapsed into their shadow.
    collapses,
    /// Shadow objects made by a write fault on a NEEDS_COPY entry.
    shadows,
    /// vm_fault calls.
    faults,
    /// Faults that restarted from the top (RetryFault).
    fault_retries,
    /// Faults that retried because the map timestamp moved.
    fault_timestamp_retries,
    /// Write faults that copied a page up the shadow chain.
    cow_faults,
    /// Pages zero-filled.
    zero_fills,
    /// swap_pager_getpages calls.
    getpages,
    /// Read I/Os issued to the swap device.
    swapins,
    /// Pages read from swap (all of them, requested + behind + ahead).
    swapin_pages,
    /// Read-behind pages read.
    rbehind_pages,
    /// Read-ahead pages read.
    rahead_pages,
    /// Times getpbuf found the pool empty and slept.
    pbuf_sleeps,
    /// Pages written to swap by pageout.
    pageouts,
    /// Write I/Os issued to the swap device.
    swapouts,
    /// Loads checked by the stale-data oracle.
    loads,
    /// Stores made through a pmap.
    stores,
    /// Times the race window of the run's scenario opened (the scenario
    /// chooses which model event counts: `sites::Window`).
    window_hits,
    /// Pages freed by split because the new object already held the index (split-skip).
    discarded,
    /// Bogus pages left behind in the original object after split (split-restart).
    leaked,
    /// Read-behind pages read into an index split had already moved (wasted I/O).
    wasted,
    /// Delays injected at named sites.
    delays,
    // Counters added after the first scenario are left out of a record
    // while zero, so that the records of the scenarios that never touch
    // them read (and re-encode) exactly as before.
    /// Swap devices emptied by swapoff (and added back).
    #[serde(skip_serializing_if = "is_zero")]
    swapoffs,
    /// Blocks the removed devices held when swapoff started.
    #[serde(skip_serializing_if = "is_zero")]
    swapoff_blocks,
    /// Pages swapoff read in from swap (counting re-reads).
    #[serde(skip_serializing_if = "is_zero")]
    swapoff_pageins,
    /// Faults that stepped back to wait for a collapse of their chain (D22908).
    #[serde(skip_serializing_if = "is_zero")]
    collapse_waits,
    /// Faults that left their invalid top-object page behind when they met
    /// a busy page below (the early-2020 fault, before r357091).
    #[serde(skip_serializing_if = "is_zero")]
    placeholders_left,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Live counters, one block per CPU.
pub struct Counters {
    cpus: alloc::vec::Vec<[AtomicU64; NCOUNTERS]>,
}

impl Counters {
    /// Counters for `ncpus` CPUs, all zero.
    pub fn new(ncpus: usize) -> Self {
        let cpus = (0..ncpus.max(1))
            .map(|_| core::array::from_fn(|_| AtomicU64::new(0)))
            .collect();
        Counters { cpus }
    }

    /// Adds `n` to counter `c` on CPU `cpu` (out-of-range CPUs use block 0).
    #[inline]
    pub fn add(&self, cpu: usize, c: Counter, n: u64) {
        let block = self.cpus.get(cpu).unwrap_or(&self.cpus[0]);
        block[c as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one to counter `c`.
    #[inline]
    pub fn inc(&self, cpu: usize, c: Counter) {
        self.add(cpu, c, 1);
    }

    /// Sum over CPUs of every counter.
    pub fn snapshot(&self) -> Stats {
        let mut s = Stats::default();
        for block in &self.cpus {
            for &c in Counter::ALL {
                *s.slot(c) += block[c as usize].load(Ordering::Relaxed);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_sum_and_serde() {
        let c = Counters::new(3);
        c.inc(0, Counter::forks);
        c.add(2, Counter::forks, 4);
        c.add(7, Counter::window_hits, 2); // falls back to block 0
        let s = c.snapshot();
        assert_eq!(s.forks, 5);
        assert_eq!(s.get(Counter::window_hits), 2);
        let json = serde_json::to_string(&s).unwrap();
        let back: Stats = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        // Missing fields default to zero (older/newer records stay readable).
        let partial: Stats = serde_json::from_str("{\"forks\":3}").unwrap();
        assert_eq!(partial.forks, 3);
        assert_eq!(partial.faults, 0);
    }
}
