//! Scheduling a matrix of boots: the variant × boot plan of `compare`, its
//! shards, and a runner that keeps at most `jobs` boots going at once (worker threads
//! taking the next job in plan order), hands every result to the caller's
//! thread as it arrives, and returns the results in plan order.
//!
//! Boot `i` of every variant uses seed `seed_base + i` (wrapping), so the
//! variants are compared on the same seeds. A [`Shard`] is every N-th cell
//! of the plan, for splitting one plan over several machines. The plan is boot-major (seed 1
//! of every variant, then seed 2, ...), so that an interrupted or partial
//! run has covered every variant equally.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use serde::{Deserialize, Serialize};
use stress::Variant;

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub variant: Variant,
    /// Boot number within the variant, from 0.
    pub boot: u32,
    pub seed: u64,
}

/// Most boots per variant a plan may have (`compare --boots`, and what
/// `merge` accepts from a report).
pub const MAX_BOOTS: u32 = 10_000;

/// Most shards a plan may be split into.
pub const MAX_SHARDS: u32 = 10_000;

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

/// A deterministic slice of a plan: shard `index` of `count` (1-based)
/// holds the cells whose plan index is `index - 1` modulo `count`, so that
/// the shards of a plan cover it exactly once and each covers every
/// variant and seed range about equally.
/// Only valid shards exist: one read from a file is checked like one
/// given on the command line ([`Shard::new`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawShard")]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A shard as read, before [`Shard::new`] checks it.
#[derive(Deserialize)]
struct RawShard {
    index: u32,
    count: u32,
}

impl TryFrom<RawShard> for Shard {
    type Error = String;
    fn try_from(r: RawShard) -> Result<Self, String> {
        Shard::new(r.index, r.count)
    }
}

impl Shard {
    /// Shard `index` of `count`: 1 ≤ index ≤ count ≤ [`MAX_SHARDS`].
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if index == 0 || count == 0 || index > count || count > MAX_SHARDS {
            return Err(format!(
                "shard {index}/{count} is not a shard I/N with 1 <= I <= N <= {MAX_SHARDS}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// Parses `I/N` (1 ≤ I ≤ N ≤ 10000).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("'{s}' is not a shard I/N with 1 <= I <= N (e.g. 1/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count).map_err(|_| bad())
    }

    /// Whether plan index `i` belongs to this shard.
    pub fn holds(&self, i: usize) -> bool {
        i % self.count as usize == (self.index - 1) as usize
    }

    /// This shard's cells, with their plan indexes.
    pub fn select<T: Clone>(&self, plan: &[T]) -> Vec<(usize, T)> {
        plan.iter()
            .enumerate()
            .filter(|(i, _)| self.holds(*i))
            .map(|(i, c)| (i, c.clone()))
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Runs `work` on every job with at most `jobs` at once; `done` sees each
/// finished result (with its job's index) on the calling thread as soon as
/// it is ready. No new job starts once `stop()` is true, and `work`
/// returns `None` for a job it did not finish. Returns the results in the
/// order of `items` (`None` for jobs that did not run or finish).
pub fn run<J, R, W, D>(
    items: &[J],
    jobs: usize,
    work: W,
    mut done: D,
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<Option<R>>
where
    J: Sync,
    R: Send,
    W: Fn(usize, &J) -> Option<R> + Sync,
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
                    if stop() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Some(r) = work(i, item)
                        && tx.send((i, r)).is_err()
                    {
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
    slots
}

#[cfg(test)]
mod tests {
    use stress::scenarios::d15293;

    fn all() -> Vec<Variant> {
        stress::ScenarioId::DEFAULT.variants().collect()
    }
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn plan_is_boot_major_with_shared_seeds() {
        let p = plan(&[d15293::BASELINE, d15293::SWAP_PREALLOC], 3, 10);
        assert_eq!(p.len(), 6);
        assert_eq!(
            p.iter().map(|c| (c.variant, c.seed)).collect::<Vec<_>>(),
            vec![
                (d15293::BASELINE, 10),
                (d15293::SWAP_PREALLOC, 10),
                (d15293::BASELINE, 11),
                (d15293::SWAP_PREALLOC, 11),
                (d15293::BASELINE, 12),
                (d15293::SWAP_PREALLOC, 12),
            ]
        );
        assert_eq!(p[5].boot, 2);
        assert_eq!(plan(&[d15293::BASELINE], 2, u64::MAX)[1].seed, 0);
        assert!(plan(&all(), 0, 1).is_empty());
    }

    /// A fake boot that takes a little time and records how many run at once.
    #[test]
    fn never_more_than_jobs_at_once_and_results_in_plan_order() {
        for jobs in [1, 3, 8] {
            let cells = plan(&all(), 4, 1);
            let running = AtomicUsize::new(0);
            let peak = AtomicUsize::new(0);
            let started = Mutex::new(Vec::new());
            let mut seen = Vec::new();
            let results: Vec<_> = run(
                &cells,
                jobs,
                |i, c: &Cell| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    started.lock().expect("lock").push(i);
                    // Later jobs finish sooner: completion order differs from plan order.
                    std::thread::sleep(Duration::from_millis(2 + (32 - i as u64) / 4));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Some((c.variant, c.seed))
                },
                |i, _| seen.push(i),
                &|| false,
            )
            .into_iter()
            .flatten()
            .collect();
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
        let none: Vec<Option<u32>> = run(&[] as &[u32], 4, |_, x| Some(*x), |_, _| {}, &|| false);
        assert!(none.is_empty());
        let two = run(&[1u32, 2], 16, |_, x| Some(x * 10), |_, _| {}, &|| false);
        assert_eq!(two, vec![Some(10), Some(20)]);
    }

    #[test]
    fn a_stopped_run_starts_nothing_more_and_keeps_what_finished() {
        use std::sync::atomic::AtomicBool;
        let stop = AtomicBool::new(false);
        let items: Vec<u32> = (0..20).collect();
        let mut seen = 0;
        let out = run(
            &items,
            2,
            |i, x| {
                if i == 5 {
                    stop.store(true, Ordering::SeqCst);
                    return None; // the boot the interrupt killed
                }
                Some(*x)
            },
            |_, _| seen += 1,
            &|| stop.load(Ordering::SeqCst),
        );
        assert_eq!(out.len(), 20);
        assert_eq!(out[5], None);
        let finished = out.iter().flatten().count();
        assert_eq!(finished, seen);
        // Two workers: at most the job in flight on the other one after 5.
        assert!(
            finished <= 6 && out[..5].iter().all(Option::is_some),
            "{out:?}"
        );
        assert!(out[7..].iter().all(Option::is_none), "{out:?}");
    }

    #[test]
    fn a_shard_read_from_a_file_is_checked() {
        let read = |t: &str| serde_json::from_str::<Shard>(t);
        assert_eq!(
            read(r#"{"index": 2, "count": 3}"#).ok(),
            Some(Shard { index: 2, count: 3 })
        );
        for bad in [
            r#"{"index": 0, "count": 3}"#,
            r#"{"index": 1, "count": 0}"#,
            r#"{"index": 4, "count": 3}"#,
            r#"{"index": 1, "count": 10001}"#,
        ] {
            let e = read(bad).expect_err(bad).to_string();
            assert!(e.contains("is not a shard I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn shards_cover_the_plan_once() {
        let p = plan(&all(), 5, 1);
        for count in 1..=7u32 {
            let mut all: Vec<usize> = (1..=count)
                .flat_map(|index| Shard { index, count }.select(&p))
                .map(|(i, _)| i)
                .collect();
            all.sort_unstable();
            assert_eq!(all, (0..p.len()).collect::<Vec<_>>(), "{count} shards");
        }
        let s = Shard::parse("2/3").expect("parses");
        assert_eq!(s, Shard { index: 2, count: 3 });
        assert_eq!(s.select(&p)[0].0, 1);
        assert_eq!(s.select(&p)[1].0, 4);
        assert_eq!(s.to_string(), "2/3");
        for bad in ["0/3", "4/3", "1/0", "x", "1/", "/2", "1/2/3", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
