//! Asking a running QEMU over QMP (its JSON machine protocol, on a unix
//! socket in the boot's temp dir) whether its guest still runs. The boot
//! engine asks when the timeout expires: a guest that QEMU itself stopped
//! (an I/O error, a paused or never-started VM, an internal error) is an
//! infrastructure error, while a guest that runs and says nothing is a
//! hang of the kernel.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The socket's name in the boot's swap disk dir.
pub const SOCKET_NAME: &str = "qmp.sock";

/// How long each step of the conversation may take.
const STEP: Duration = Duration::from_secs(1);

/// Longest socket path a `sockaddr_un` holds, with room to spare.
pub const MAX_PATH: usize = 100;

/// The `-qmp` value for a server socket at `path` that QEMU does not wait
/// on (QEMU's option syntax doubles commas inside values).
pub fn arg(path: &Path) -> OsString {
    let mut a = OsString::from("unix:");
    a.push(path.to_string_lossy().replace(',', ",,"));
    a.push(",server=on,wait=off");
    a
}

/// The guest's run state, as `query-status` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Status {
    /// `running`, `paused`, `io-error`, `prelaunch`, `internal-error`, ...
    pub status: String,
    pub running: bool,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "return")]
    ret: Status,
}

/// The run state in one line of QEMU's answer; `None` for other lines
/// (greeting, events, the capabilities reply).
pub fn parse_status(line: &str) -> Option<Status> {
    serde_json::from_str::<Reply>(line).ok().map(|r| r.ret)
}

/// Asks the QEMU listening at `path` for its guest's run state.
pub fn status(path: &Path) -> Result<Status, String> {
    let s = UnixStream::connect(path).map_err(|e| format!("cannot connect: {e}"))?;
    s.set_read_timeout(Some(STEP))
        .and_then(|()| s.set_write_timeout(Some(STEP)))
        .map_err(|e| e.to_string())?;
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut next = |r: &mut BufReader<UnixStream>| -> Result<String, String> {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => Err("QEMU closed the socket".into()),
            Ok(_) => Ok(line.clone()),
            Err(e) => Err(e.to_string()),
        }
    };
    next(&mut r)?; // the greeting
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(|e| e.to_string())?;
    while !next(&mut r)?.contains("\"return\"") {}
    w.write_all(b"{\"execute\":\"query-status\"}\n")
        .map_err(|e| e.to_string())?;
    for _ in 0..64 {
        if let Some(st) = parse_status(&next(&mut r)?) {
            return Ok(st);
        }
    }
    Err("no answer to query-status".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_state_from_query_status() {
        assert_eq!(
            parse_status(
                r#"{"return": {"status": "io-error", "singlestep": false, "running": false}}"#
            ),
            Some(Status {
                status: "io-error".into(),
                running: false
            })
        );
        assert_eq!(
            parse_status(r#"{"return": {"status": "running", "running": true}}"#)
                .map(|s| s.running),
            Some(true)
        );
        assert_eq!(parse_status(r#"{"return": {}}"#), None);
        assert_eq!(
            parse_status(r#"{"timestamp": {"seconds": 1}, "event": "STOP"}"#),
            None
        );
        assert_eq!(
            arg(Path::new("/tmp/a,b/qmp.sock")),
            OsString::from("unix:/tmp/a,,b/qmp.sock,server=on,wait=off")
        );
    }
}
