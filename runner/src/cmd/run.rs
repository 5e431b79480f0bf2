//! `cargo xtask run`: boot once, stream the console, print the verdict.

use std::cell::RefCell;

use stress::proto::StressRequest;

use super::Ctx;
use crate::accel::Chooser;
use crate::boot::{self, BootSpec};
use crate::cli::RunArgs;
use crate::error::{Error, Result};
use crate::render;

/// The kernel command line when none is given.
pub const DEFAULT_APPEND: &str = "mode=probe";

pub fn run(ctx: &Ctx, a: &RunArgs) -> Result<u8> {
    let append = kernel_cmdline(&a.kernel_args)?;
    let kernel = ctx.kernel()?;
    let qemu = ctx.qemu()?;
    let b = &a.boot;
    let accel = Chooser::new(kernel.clone(), qemu.clone())
        .resolve(b.accel, b.machine, b.cpus)
        .accel;
    let spec = BootSpec {
        mem_mib: b.mem,
        disk_bytes: (a.disk > 0).then_some(a.disk << 20),
        ..BootSpec::new(b.machine, b.cpus, accel, append, b.timeout, kernel, qemu)
    };
    eprintln!(
        "booting {} with `{}` (timeout {:?})",
        spec.label(),
        spec.append,
        spec.timeout
    );
    let raw = a.raw;
    // The console streams to stdout. A failed write (`| head` gone,
    // `> /dev/full`) ends the boot: nothing more can be reported.
    let streamed = RefCell::new(Ok(()));
    let out = boot::boot_until(
        &spec,
        &mut |l| {
            let mut s = streamed.borrow_mut();
            if s.is_ok() {
                *s = crate::out::stdout(&format!("{}\n", render::console_line(l, raw)));
            }
        },
        &|| streamed.borrow().is_err(),
    );
    if ctx.verbose {
        eprintln!("command: {}", out.command);
    }
    let printed = streamed
        .into_inner()
        .and_then(|()| crate::out::stdout(&render::outcome(&out)));
    Ok(crate::out::exit_status(
        printed,
        out.verdict().exit_status(),
    ))
}

/// Joins and checks the kernel arguments: key=value tokens; with
/// `mode=stress` (or any stress word: scenario, variant) a whole, valid
/// stress request, parsed as the kernel will.
pub fn kernel_cmdline(args: &[String]) -> Result<String> {
    let tokens: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    if tokens.is_empty() {
        return Ok(DEFAULT_APPEND.into());
    }
    let mut stress = false;
    for t in &tokens {
        let Some((key, value)) = t.split_once('=') else {
            return Err(Error::usage(format!(
                "kernel argument '{t}' is not key=value (e.g. mode=tests)"
            )));
        };
        stress |= (key == "mode" && value == "stress") || key == "scenario" || key == "variant";
    }
    let line = tokens.join(" ");
    if stress {
        line.parse::<StressRequest>().map_err(Error::usage)?;
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_args_are_checked() {
        assert_eq!(kernel_cmdline(&[]).expect("default"), "mode=probe");
        assert_eq!(
            kernel_cmdline(&["mode=tests expect_cpus=2".into(), "tests=a,b".into()]).expect("ok"),
            "mode=tests expect_cpus=2 tests=a,b"
        );
        let e = kernel_cmdline(&["mode=stress variant=nope seed=1 duration_ms=5".into()])
            .expect_err("bad variant");
        assert!(e.to_string().contains("swap-prealloc"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = kernel_cmdline(&["mode=stress scenario=nope variant=baseline".into()])
            .expect_err("bad scenario");
        assert!(e.to_string().contains("unknown scenario 'nope'"), "{e}");
        let e = kernel_cmdline(&["mode=stress variant=baseline".into()]).expect_err("no seed");
        assert!(e.to_string().contains("needs seed"), "{e}");
        assert!(
            kernel_cmdline(&["mode=stress variant=split-skip seed=1 duration_ms=5".into()]).is_ok()
        );
        assert!(kernel_cmdline(&["tests".into()]).is_err());
    }
}
