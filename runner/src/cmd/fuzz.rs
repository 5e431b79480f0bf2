//! `cargo xtask fuzz`: the long run of the console fuzzer
//! (`runner/tests/console_fuzz.rs`, ignored test `long_fuzz`) in release
//! mode: N inputs from a seed through the runner's whole console path.
//! `cargo test` runs a short fixed-seed run of the same properties.

use std::process::Stdio;
use std::time::Instant;

use super::Ctx;
use crate::cli::FuzzArgs;
use crate::error::{EXIT_FAILURE, EXIT_OK, Result};
use crate::{seed, toolchain};

pub fn run(ctx: &Ctx, a: &FuzzArgs) -> Result<u8> {
    eprintln!(
        "fuzz: {} inputs from seed {} (cargo test --release -p runner --test console_fuzz -- --ignored --exact long_fuzz)",
        a.cases,
        seed::show(a.seed)
    );
    let t = Instant::now();
    let status = toolchain::cargo()
        .args([
            "test",
            "--release",
            "-q",
            "-p",
            "runner",
            "--test",
            "console_fuzz",
            "--",
            "--ignored",
            "--exact",
            "long_fuzz",
            "--nocapture",
        ])
        .env("FORKSWAP_FUZZ_CASES", a.cases.to_string())
        .env("FORKSWAP_FUZZ_SEED", seed::show(a.seed))
        .current_dir(&ctx.workspace)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run cargo test: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    if status.success() {
        println!(
            "fuzz: {} inputs passed every property in {secs:.1} s (build included)",
            a.cases
        );
        Ok(EXIT_OK)
    } else {
        println!("fuzz: FAILED after {secs:.1} s ({status}); the smallest failing input is above");
        Ok(EXIT_FAILURE)
    }
}
