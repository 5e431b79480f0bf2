//! Errors of the runner and the exit status each one maps to.
//!
//! Exit statuses of `cargo xtask` (documented in the README):
//! `0` success, `1` a failure was found (a boot or a test failed),
//! `2` bad usage, `3` harness/infrastructure error, `4` (`stress`) a clean
//! run in which the race window never opened. Errors are printed as one
//! line on stderr (`error: ...`); nothing in the runner panics on purpose.

use std::process::ExitCode;

/// Exit status: everything passed.
pub const EXIT_OK: u8 = 0;
/// Exit status: a boot or a test failed (a finding, not a harness problem).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: bad usage (clap errors, invalid values).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: the harness could not do its job (QEMU missing, build failed, ...).
pub const EXIT_INFRA: u8 = 3;
/// Exit status of `stress`: the run ended clean but the race window never
/// opened (0 window hits), so it proves nothing about the variant.
pub const EXIT_INCONCLUSIVE: u8 = 4;

/// An error that stops a subcommand.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asked for something invalid.
    #[error("{0}")]
    Usage(String),
    /// The harness could not do its job.
    #[error("{0:#}")]
    Infra(#[from] anyhow::Error),
}

impl Error {
    /// A usage error with this message.
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Infra(_) => EXIT_INFRA,
        }
    }

    /// Prints the error as one line on stderr and returns the exit status.
    pub fn report(&self) -> ExitCode {
        crate::note!("error: {}", one_line(&self.to_string()));
        ExitCode::from(self.exit_code())
    }
}

/// Result of a subcommand: the exit status on success or a failure found.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Joins the lines of a message with "; " so that an error is one line.
pub fn one_line(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_with_their_exit_code() {
        let e = Error::from(anyhow::anyhow!("disk full\nsecond line").context("creating disk"));
        assert_eq!(e.exit_code(), EXIT_INFRA);
        assert_eq!(
            one_line(&e.to_string()),
            "creating disk: disk full; second line"
        );
        assert_eq!(Error::usage("bad").exit_code(), EXIT_USAGE);
    }
}
