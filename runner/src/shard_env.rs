//! `compare --shard auto`: which shard of the plan this process runs, taken
//! from the job engine that started it instead of the command line.
//!
//! - A Slurm job array task (`sbatch --array=A-B[:S]`): its index is
//!   `SLURM_ARRAY_TASK_ID`, counted from `SLURM_ARRAY_TASK_MIN` in steps of
//!   `SLURM_ARRAY_TASK_STEP` (default 1); the shard count is
//!   `SLURM_ARRAY_TASK_COUNT` or, without it, the size of the range up to
//!   `SLURM_ARRAY_TASK_MAX`. Task `A` runs shard 1, so `--array=0-2` and
//!   `--array=1-3` both split the plan in 3.
//! - A Kubernetes Indexed Job pod: `JOB_COMPLETION_INDEX` (from 0) runs
//!   shard `index + 1` of `--shards N` or, without it, of the environment
//!   variable [`SHARDS_VAR`] (set it to the Job's `completions`).
//!
//! The resolution is a pure function of the environment (a lookup
//! function), so that every missing or inconsistent variable is tested
//! without touching the process's environment. Every error is one line.

use crate::matrix::Shard;

/// The environment variable that gives a Kubernetes Indexed Job's shard
/// count when `--shards` is not given.
pub const SHARDS_VAR: &str = "FORKSWAP_SHARDS";

/// The most shards a plan is split into (as `--shard I/N`).
const MAX_SHARDS: u32 = 10_000;

/// The value of `--shard`: `I/N`, or `auto` (from the engine's environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

impl ShardArg {
    /// Parses `auto` or `I/N`.
    pub fn parse(s: &str) -> Result<ShardArg, String> {
        if s.trim() == "auto" {
            return Ok(ShardArg::Auto);
        }
        Shard::parse(s)
            .map(ShardArg::Fixed)
            .map_err(|e| format!("{e}, or auto"))
    }
}

/// The shard to run from `--shard` and `--shards`: `None` for the whole
/// plan, the engine's shard for `auto` (`env` looks a variable up).
pub fn resolve(
    shard: Option<ShardArg>,
    shards: Option<u32>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Shard>, String> {
    match (shard, shards) {
        (None, None) => Ok(None),
        (Some(ShardArg::Fixed(s)), None) => Ok(Some(s)),
        (Some(ShardArg::Auto), n) => from_env(n, env).map(Some),
        (_, Some(_)) => Err("--shards N goes with --shard auto only".into()),
    }
}

/// The shard of this job array task or Indexed Job pod; `shards` is
/// `--shards N` when given.
pub fn from_env(
    shards: Option<u32>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Shard, String> {
    let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let slurm = var("SLURM_ARRAY_TASK_ID");
    let k8s = var("JOB_COMPLETION_INDEX");
    let shard = match (slurm, k8s) {
        (Some(_), Some(_)) => {
            return Err(
                "--shard auto: both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are set: \
                 is this a Slurm array task or a Kubernetes Indexed Job?"
                    .into(),
            );
        }
        (Some(id), None) => slurm_shard(&id, &var)?,
        (None, Some(index)) => indexed_job_shard(&index, shards, &var)?,
        (None, None) => {
            return Err(
                "--shard auto: no job array here: neither SLURM_ARRAY_TASK_ID (a Slurm \
                 array task, sbatch --array) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed \
                 Job) is set; use --shard I/N outside them"
                    .into(),
            );
        }
    };
    if let Some(n) = shards
        && n != shard.count
    {
        return Err(format!(
            "--shard auto: --shards {n} but the job array has {} task(s)",
            shard.count
        ));
    }
    Ok(shard)
}

/// A non-negative integer variable; the error names it.
fn number(name: &str, v: &str) -> Result<u64, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("--shard auto: {name}={v} is not a non-negative integer"))
}

/// A count of shards in 1..=10000; the error names where it came from.
fn count(what: &str, n: u64) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(c) if (1..=MAX_SHARDS).contains(&c) => Ok(c),
        _ => Err(format!(
            "--shard auto: {what} gives {n} shards, not 1 to {MAX_SHARDS}"
        )),
    }
}

fn slurm_shard(id: &str, var: &impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let id = number("SLURM_ARRAY_TASK_ID", id)?;
    let get = |k: &str| var(k).map(|v| number(k, &v)).transpose();
    let min = get("SLURM_ARRAY_TASK_MIN")?.ok_or(
        "--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_MIN is not \
         (is this an array task of sbatch --array?)",
    )?;
    let step = get("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
    if step == 0 {
        return Err("--shard auto: SLURM_ARRAY_TASK_STEP=0".into());
    }
    let of_max = match get("SLURM_ARRAY_TASK_MAX")? {
        Some(max) if max < min => {
            return Err(format!(
                "--shard auto: SLURM_ARRAY_TASK_MAX={max} is below SLURM_ARRAY_TASK_MIN={min}"
            ));
        }
        Some(max) => Some((max - min) / step + 1),
        None => None,
    };
    let n = match (get("SLURM_ARRAY_TASK_COUNT")?, of_max) {
        (Some(c), Some(m)) if c != m => {
            return Err(format!(
                "--shard auto: the array is not a range: SLURM_ARRAY_TASK_COUNT={c} but \
                 {m} task(s) from SLURM_ARRAY_TASK_MIN to _MAX; submit it as --array=1-N"
            ));
        }
        (Some(c), _) => c,
        (None, Some(m)) => m,
        (None, None) => {
            return Err(
                "--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT \
                 nor SLURM_ARRAY_TASK_MAX is"
                    .into(),
            );
        }
    };
    let count = count("the Slurm array", n)?;
    if id < min || (id - min) % step != 0 || (id - min) / step >= u64::from(count) {
        return Err(format!(
            "--shard auto: SLURM_ARRAY_TASK_ID={id} is not one of the {count} task(s) from \
             SLURM_ARRAY_TASK_MIN={min} in steps of {step}"
        ));
    }
    Ok(Shard {
        index: ((id - min) / step) as u32 + 1,
        count,
    })
}

fn indexed_job_shard(
    index: &str,
    shards: Option<u32>,
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Shard, String> {
    let index = number("JOB_COMPLETION_INDEX", index)?;
    let n = match (shards, var(SHARDS_VAR)) {
        (Some(n), _) => u64::from(n),
        (None, Some(v)) => number(SHARDS_VAR, &v)?,
        (None, None) => {
            return Err(format!(
                "--shard auto: JOB_COMPLETION_INDEX is set but the shard count is not: pass \
                 --shards N or set {SHARDS_VAR} (the Job's completions)"
            ));
        }
    };
    let from = if shards.is_some() {
        "--shards"
    } else {
        SHARDS_VAR
    };
    let count = count(from, n)?;
    if index >= u64::from(count) {
        return Err(format!(
            "--shard auto: JOB_COMPLETION_INDEX={index} but {from} is {count} (indexes run \
             from 0 to {})",
            count - 1
        ));
    }
    Ok(Shard {
        index: index as u32 + 1,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn shard(index: u32, count: u32) -> Shard {
        Shard { index, count }
    }

    fn slurm(id: &str, min: &str, max: &str, count: &str) -> Pairs {
        [
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", min),
            ("SLURM_ARRAY_TASK_MAX", max),
            ("SLURM_ARRAY_TASK_COUNT", count),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.to_string()))
        .collect()
    }

    type Pairs = Vec<(&'static str, String)>;

    fn auto(pairs: &[(&'static str, String)], shards: Option<u32>) -> Result<Shard, String> {
        let p: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        from_env(shards, env(&p))
    }

    #[test]
    fn slurm_arrays_from_0_or_1_with_max_or_count_give_the_same_split() {
        for (id, min, max, count) in [
            ("1", "1", "3", "3"),
            ("1", "1", "3", ""),
            ("1", "1", "", "3"),
            ("0", "0", "2", "3"),
            ("7", "7", "9", ""),
        ] {
            let got = auto(&slurm(id, min, max, count), None);
            assert_eq!(got, Ok(shard(1, 3)), "{id} {min} {max} {count}");
        }
        assert_eq!(auto(&slurm("3", "1", "3", "3"), None), Ok(shard(3, 3)));
        assert_eq!(auto(&slurm("2", "0", "", "4"), Some(4)), Ok(shard(3, 4)));
        // --array=0-8:4 is tasks 0, 4, 8.
        let mut stepped = slurm("4", "0", "8", "");
        stepped.push(("SLURM_ARRAY_TASK_STEP", "4".into()));
        assert_eq!(auto(&stepped, None), Ok(shard(2, 3)));
    }

    #[test]
    fn indexed_jobs_count_from_shards_or_the_variable() {
        let idx = |i: &str| vec![("JOB_COMPLETION_INDEX", i.to_string())];
        assert_eq!(auto(&idx("0"), Some(3)), Ok(shard(1, 3)));
        let mut with_var = idx("2");
        with_var.push((SHARDS_VAR, "3".into()));
        assert_eq!(auto(&with_var, None), Ok(shard(3, 3)));
        // --shards, when given, is the count (the variable agrees here).
        assert_eq!(auto(&with_var, Some(3)), Ok(shard(3, 3)));
    }

    #[test]
    fn missing_or_inconsistent_environments_are_one_line_errors() {
        let cases: Vec<(Pairs, Option<u32>, &str)> = vec![
            (vec![], None, "neither SLURM_ARRAY_TASK_ID"),
            (
                vec![(SHARDS_VAR, "3".into())],
                None,
                "neither SLURM_ARRAY_TASK_ID",
            ),
            (
                slurm("1", "", "3", "3"),
                None,
                "SLURM_ARRAY_TASK_MIN is not",
            ),
            (
                slurm("1", "1", "", ""),
                None,
                "neither SLURM_ARRAY_TASK_COUNT",
            ),
            (
                slurm("x", "1", "3", ""),
                None,
                "SLURM_ARRAY_TASK_ID=x is not",
            ),
            (
                slurm("4", "1", "3", ""),
                None,
                "SLURM_ARRAY_TASK_ID=4 is not one of the 3",
            ),
            (
                slurm("0", "1", "3", ""),
                None,
                "SLURM_ARRAY_TASK_ID=0 is not one of",
            ),
            (slurm("1", "3", "1", ""), None, "below SLURM_ARRAY_TASK_MIN"),
            // --array=1,5,9 is not a range.
            (slurm("5", "1", "9", "3"), None, "the array is not a range"),
            (
                slurm("1", "1", "3", ""),
                Some(4),
                "--shards 4 but the job array has 3",
            ),
            (
                vec![("JOB_COMPLETION_INDEX", "0".into())],
                None,
                "pass --shards N or set FORKSWAP_SHARDS",
            ),
            (
                vec![("JOB_COMPLETION_INDEX", "3".into())],
                Some(3),
                "JOB_COMPLETION_INDEX=3 but --shards is 3",
            ),
            (
                vec![
                    ("JOB_COMPLETION_INDEX", "0".into()),
                    (SHARDS_VAR, "0".into()),
                ],
                None,
                "FORKSWAP_SHARDS gives 0 shards",
            ),
            (
                vec![
                    ("JOB_COMPLETION_INDEX", "0".into()),
                    (SHARDS_VAR, "three".into()),
                ],
                None,
                "FORKSWAP_SHARDS=three is not",
            ),
            (
                vec![
                    ("JOB_COMPLETION_INDEX", "0".into()),
                    ("SLURM_ARRAY_TASK_ID", "1".into()),
                ],
                Some(2),
                "both SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX",
            ),
            (slurm("1", "1", "20000", ""), None, "not 1 to 10000"),
        ];
        for (pairs, shards, needle) in cases {
            let e = auto(&pairs, shards).expect_err(needle);
            assert!(e.contains(needle), "{needle}: {e}");
            assert!(e.starts_with("--shard auto: ") && !e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_flag_parses_and_shards_needs_auto() {
        assert_eq!(ShardArg::parse("auto"), Ok(ShardArg::Auto));
        assert_eq!(ShardArg::parse("2/3"), Ok(ShardArg::Fixed(shard(2, 3))));
        assert!(ShardArg::parse("4/3").expect_err("bad").contains("or auto"));
        let none = env(&[]);
        assert_eq!(resolve(None, None, &none), Ok(None));
        let fixed = Some(ShardArg::Fixed(shard(1, 2)));
        assert_eq!(resolve(fixed, None, &none), Ok(Some(shard(1, 2))));
        for s in [None, fixed] {
            let e = resolve(s, Some(2), &none).expect_err("--shards alone");
            assert!(e.contains("--shards N goes with --shard auto"), "{e}");
        }
        let k8s = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert_eq!(
            resolve(Some(ShardArg::Auto), Some(2), &k8s),
            Ok(Some(shard(2, 2)))
        );
    }
}
