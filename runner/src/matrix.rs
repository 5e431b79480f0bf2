//! Scheduling a matrix of boots: the variant × boot plan of `compare`, and
//! a runner that keeps at most `jobs` boots going at once (worker threads
//! taking the next job in plan order), hands every result to the caller's
//! thread as it arrives, and returns the results in plan order.
//!
//! Boot `i` of every variant uses seed `seed_base + i` (wrapping), so the
//! variants are compared on the same seeds. The plan is boot-major (seed 1
//! of every variant, then seed 2, ...), so that an interrupted or partial
//! run has covered every variant equally.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use stress::Variant;

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub variant: Variant,
    /// Boot number within the variant, from 0.
    pub boot: u32,
    pub seed: u64,
}

/// The plan: `boots` boots of every variant, boot-major.
pub fn plan(variants: &[Variant], boots: u32, seed_base: u64) -> Vec<Cell> {
    (0..boots)
        .flat_map(|i| {
            variants.iter().map(move |&variant| Cell {
                variant,
                boot: i,
                seed: seed_base.wrapping_add(u64::from(i)),
            })
        })
        .collect()
}

/// Runs `work` on every job with at most `jobs` at once; `done` sees each
/// result (with its job's index) on the calling thread as soon as it is
/// ready. Returns the results in the order of `items`.
pub fn run<J, R, W, D>(items: &[J], jobs: usize, work: W, mut done: D) -> Vec<R>
where
    J: Sync,
    R: Send,
    W: Fn(usize, &J) -> R + Sync,
    D: FnMut(usize, &R),
{
    let workers = jobs.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, R)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, work) = (&next, &work);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if tx.send((i, work(i, item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            done(i, &r);
            slots[i] = Some(r);
        }
    });
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn plan_is_boot_major_with_shared_seeds() {
        let p = plan(&[Variant::Baseline, Variant::SwapPrealloc], 3, 10);
        assert_eq!(p.len(), 6);
        assert_eq!(
            p.iter().map(|c| (c.variant, c.seed)).collect::<Vec<_>>(),
            vec![
                (Variant::Baseline, 10),
                (Variant::SwapPrealloc, 10),
                (Variant::Baseline, 11),
                (Variant::SwapPrealloc, 11),
                (Variant::Baseline, 12),
                (Variant::SwapPrealloc, 12),
            ]
        );
        assert_eq!(p[5].boot, 2);
        assert_eq!(plan(&[Variant::Baseline], 2, u64::MAX)[1].seed, 0);
        assert!(plan(&Variant::ALL, 0, 1).is_empty());
    }

    /// A fake boot that takes a little time and records how many run at once.
    #[test]
    fn never_more_than_jobs_at_once_and_results_in_plan_order() {
        for jobs in [1, 3, 8] {
            let cells = plan(&Variant::ALL, 4, 1);
            let running = AtomicUsize::new(0);
            let peak = AtomicUsize::new(0);
            let started = Mutex::new(Vec::new());
            let mut seen = Vec::new();
            let results = run(
                &cells,
                jobs,
                |i, c: &Cell| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    started.lock().expect("lock").push(i);
                    // Later jobs finish sooner: completion order differs from plan order.
                    std::thread::sleep(Duration::from_millis(2 + (32 - i as u64) / 4));
                    running.fetch_sub(1, Ordering::SeqCst);
                    (c.variant, c.seed)
                },
                |i, _| seen.push(i),
            );
            let peak = peak.load(Ordering::SeqCst);
            assert!(peak <= jobs, "{peak} boots at once with --jobs {jobs}");
            if jobs > 1 {
                assert!(peak > 1, "never ran in parallel with --jobs {jobs}");
            }
            assert_eq!(results.len(), cells.len());
            for (r, c) in results.iter().zip(&cells) {
                assert_eq!(*r, (c.variant, c.seed));
            }
            let unique: HashSet<usize> = seen.iter().copied().collect();
            assert_eq!((seen.len(), unique.len()), (cells.len(), cells.len()));
            assert_eq!(started.lock().expect("lock").len(), cells.len());
        }
    }

    #[test]
    fn empty_matrix_and_more_jobs_than_items() {
        let none: Vec<u32> = run(&[] as &[u32], 4, |_, x| *x, |_, _| {});
        assert!(none.is_empty());
        let two = run(&[1u32, 2], 16, |_, x| x * 10, |_, _| {});
        assert_eq!(two, vec![10, 20]);
    }
}
