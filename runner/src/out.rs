//! Writing to the terminal without ever panicking or losing a result: the
//! report on standard output is written with [`stdout`] (its error is kept,
//! not a panic), notes on standard error with [`note!`](crate::note)
//! (errors ignored: a closed stderr must not cost the verdict), and
//! [`exit_status`] maps a failed report write to the documented status.
//! Commands write their result files first and print afterwards, so a
//! full or closed terminal never loses what the user asked to keep.

use std::io::{ErrorKind, Write};

use crate::error::EXIT_INFRA;
use crate::reaper::EXIT_BROKEN_PIPE;

/// Writes one line to standard error, ignoring any error (a closed or
/// full stderr must not stop the runner).
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}

/// The function behind [`note!`](crate::note).
pub fn err_line(args: std::fmt::Arguments) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.write_all(b"\n"));
}

/// Writes `text` to standard output and flushes it.
pub fn stdout(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes()).and_then(|()| o.flush())
}

/// The exit status of a command that ended with `code` and wrote its
/// report with `printed`: `code` when the report was written; 141 (as
/// SIGPIPE would) when standard output was closed (`| head`); 3 with one
/// line on stderr for any other write error (`> /dev/full`).
pub fn exit_status(printed: std::io::Result<()>, code: u8) -> u8 {
    match printed {
        Ok(()) => code,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => EXIT_BROKEN_PIPE as u8,
        Err(e) => {
            note!("error: cannot write the report to standard output: {e}");
            EXIT_INFRA
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_report_write_has_its_own_status() {
        assert_eq!(exit_status(Ok(()), 1), 1);
        let pipe = std::io::Error::from(ErrorKind::BrokenPipe);
        assert_eq!(exit_status(Err(pipe), 0), 141);
        let full = std::io::Error::from_raw_os_error(28);
        assert_eq!(exit_status(Err(full), 0), EXIT_INFRA);
    }
}
