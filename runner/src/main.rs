//! `cargo xtask`: forkswap's host tool. It builds the kernel, boots it under
//! QEMU, reads the serial console and decides pass/fail with named verdicts.
//! See README.md for the commands, verdicts and exit statuses.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use runner::error::{EXIT_USAGE, Error};
use runner::{cli, cmd, reaper};

fn main() -> ExitCode {
    reaper::install_broken_pipe_hook();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            // One line: clap's message ("error: ..." and the lines that
            // belong to it, e.g. the missing arguments) without the usage
            // block and tips.
            let text = e.render().to_string();
            let msg: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let msg = if msg.is_empty() {
                "error: bad usage".to_string()
            } else {
                msg.join(" ")
            };
            eprintln!("{msg} (see `cargo xtask --help`)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = reaper::install_signal_handler() {
        return Error::from(e.context("cannot install the signal handler")).report();
    }
    let result = cmd::dispatch(cli);
    // A boot that ended because the signal handler killed its QEMU must not
    // decide the exit status: an interrupted runner exits 130/143.
    if let Some(code) = reaper::interrupt_exit_code() {
        if let Err(e) = &result {
            let _ = e.report();
        }
        return ExitCode::from(code);
    }
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => e.report(),
    }
}
