//! `cargo xtask test`: the host tests, then the boot suite under QEMU, with
//! KTAP on stdout, one closing `N passed, M failed` line and optional JUnit.

use std::process::Stdio;
use std::time::Instant;

use super::Ctx;
use crate::accel::Chooser;
use crate::cli::{SuiteArgs, TestArgs};
use crate::error::{EXIT_FAILURE, EXIT_OK, Result};
use crate::report::{self, CaseResult, Ktap};
use crate::suite::Suite;
use crate::suite_cases;
use crate::suite_plan::{self, Item};
use crate::toolchain;

/// Name of the host-tests case.
pub const HOST_CASE: &str = "host/cargo-test";

pub fn run(ctx: &Ctx, a: &TestArgs) -> Result<u8> {
    run_suite(ctx, &a.suite, !a.boot_only)
}

/// Runs the host tests (when asked and selected) and the boot suite.
pub fn run_suite(ctx: &Ctx, a: &SuiteArgs, host: bool) -> Result<u8> {
    let selected = |name: &str| a.filter.as_deref().is_none_or(|f| name.contains(f));
    let host = host && selected(HOST_CASE);
    let items: Vec<Item> = suite_plan::plan(a.machine)
        .into_iter()
        .filter(|i| i.cases().iter().any(|c| selected(c)))
        .collect();
    let boot_cases: usize = items
        .iter()
        .map(|i| i.cases().iter().filter(|c| selected(c)).count())
        .sum();
    let planned = usize::from(host) + boot_cases + usize::from(!items.is_empty());
    if planned == 0 {
        return Err(crate::error::Error::usage(format!(
            "--filter {:?} selects no test case",
            a.filter.as_deref().unwrap_or("")
        )));
    }

    let host_result = host.then(|| host_tests(ctx));
    // Build and locate everything before the first KTAP line.
    let (kernel, qemu) = if items.is_empty() {
        Default::default()
    } else {
        (ctx.kernel()?, ctx.qemu()?)
    };

    let mut ktap = Ktap::default();
    ktap.start(planned);
    if let Some(r) = host_result {
        ktap.case(r);
    }
    if !items.is_empty() {
        let mut chooser = Chooser::new(kernel.clone(), qemu.clone());
        let mut s = Suite {
            chooser: &mut chooser,
            accel: a.accel,
            kernel,
            qemu,
            verbose: ctx.verbose,
        };
        for item in &items {
            // Standard output is gone or full: without a JUnit file no
            // further case can be reported anywhere.
            if ktap.write_failed() && a.junit.is_none() {
                break;
            }
            s.run_item(item, &selected, &mut ktap);
        }
        ktap.case(suite_cases::orphan_case());
    }
    if let Some(path) = &a.junit {
        report::write_junit(path, &ktap.results)?;
        ktap.diag(&format!("JUnit XML written to {}", path.display()));
    }
    let printed = ktap.finish();
    let code = if ktap.failed() == 0 {
        EXIT_OK
    } else {
        EXIT_FAILURE
    };
    Ok(crate::out::exit_status(printed, code))
}

/// `cargo test -p stress -p runner -p unikernel`, its output passed through.
fn host_tests(ctx: &Ctx) -> CaseResult {
    let t = Instant::now();
    eprintln!("running host tests: cargo test -p stress -p runner -p unikernel");
    let status = toolchain::cargo()
        .args(["test", "-p", "stress", "-p", "runner", "-p", "unikernel"])
        .current_dir(&ctx.workspace)
        .stdin(Stdio::null())
        .status();
    let (ok, message) = match status {
        Ok(s) if s.success() => (
            true,
            "cargo test -p stress -p runner -p unikernel passed".to_string(),
        ),
        Ok(s) => (
            false,
            format!(
                "cargo test -p stress -p runner -p unikernel failed ({s}); its output is above"
            ),
        ),
        Err(e) => (false, format!("cannot run cargo test: {e}")),
    };
    CaseResult {
        name: HOST_CASE.into(),
        ok,
        message,
        details: String::new(),
        time: t.elapsed(),
    }
}
