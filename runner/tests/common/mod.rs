//! A stand-in for QEMU: a bash script that prints what a test wants and
//! exits (or hangs) the way the test wants, so the boot engine can be tested
//! without QEMU or a kernel.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod junit;

use stress::proto::{self, Frame, Record, Verdict};

pub struct Fake {
    pub dir: tempfile::TempDir,
    pub script: PathBuf,
}

impl Fake {
    /// A fake QEMU named `qemu-system-x86_64` whose body is `body` (bash).
    /// `spawn_child` starts a long `sleep` in the background whose command
    /// line contains the script's dir (to check that it is killed too).
    pub fn new(body: &str) -> Fake {
        let dir = tempfile::Builder::new()
            .prefix("fake-qemu-")
            .tempdir()
            .expect("temp dir");
        let script = dir.path().join("qemu-system-x86_64");
        let text = format!(
            "#!/bin/bash\nspawn_child() {{ ( exec -a \"$0-child\" sleep 300 ) & }}\n{body}\n"
        );
        std::fs::write(&script, text).expect("write script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Fake { dir, script }
    }

    /// Live processes whose command line mentions this fake's dir.
    pub fn leftovers(&self) -> Vec<u32> {
        let needle = self.dir.path().to_string_lossy().to_string();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left = runner::reaper::processes_matching(&needle);
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `printf '%s\n' '<line>'` for a record.
pub fn print_record(seq: u64, rec: Record) -> String {
    let l = proto::encode(&Frame { seq, cpu: 0, rec });
    format!("printf '%s\\n' '{}'", l.replace('\'', "'\\''"))
}

pub fn hello() -> Record {
    Record::Hello {
        kernel: "0.1.0".into(),
        cpus: 1,
        mem_mib: 256,
        transport: "mmio".into(),
        cmdline: "mode=probe".into(),
    }
}

pub fn ready() -> Record {
    Record::Ready {
        cpus: 1,
        boot_ns: 1000,
    }
}

pub fn done() -> Record {
    Record::Done {
        verdict: Verdict::Pass,
        ms: 1,
        stats: None,
    }
}

/// Hello, Ready, Done and the Pass status.
pub fn probe_body() -> String {
    format!(
        "{}\n{}\n{}\nexit 33",
        print_record(0, hello()),
        print_record(1, ready()),
        print_record(2, done())
    )
}

pub fn spec(qemu: &Path, timeout: Duration) -> runner::boot::BootSpec {
    runner::boot::BootSpec::new(
        runner::qemu::Machine::Microvm,
        1,
        runner::qemu::Accel::Tcg,
        "mode=probe".into(),
        timeout,
        PathBuf::from("/nonexistent-kernel"),
        qemu.to_path_buf(),
    )
}
