//! The `cargo xtask` binary: exit statuses, one-line errors, and no QEMU or
//! temp disk left after SIGINT/SIGTERM (with a fake QEMU on PATH).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Fake;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn runner() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_runner"));
    c.env("RUST_BACKTRACE", "1");
    c
}

fn assert_one_line_error(args: &[&str], code: i32, needle: &str) {
    let out = runner().args(args).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_on_one_line() {
    assert_one_line_error(&["run", "--cpus", "0"], 2, "--cpus");
    assert_one_line_error(&["run", "--cpus", "65"], 2, "1..=64");
    assert_one_line_error(&["run", "--mem", "8"], 2, "--mem");
    assert_one_line_error(&["run", "--machine", "pc"], 2, "pc");
    assert_one_line_error(
        &["run", "--", "variant=nope"],
        2,
        "valid: baseline, split-skip",
    );
    assert_one_line_error(&["run", "--", "oops"], 2, "key=value");
    assert_one_line_error(&["bench", "boot", "--boots", "0"], 2, "--boots");
    assert_one_line_error(
        &["test", "--filter", "no-such-case"],
        2,
        "selects no test case",
    );
    assert_one_line_error(&["nope"], 2, "nope");
    // clap's message keeps what belongs to it: the missing argument, the
    // possible values.
    assert_one_line_error(
        &["merge", "--json", "x.json"],
        2,
        "required arguments were not provided: <REPORT.json>...",
    );
    assert_one_line_error(
        &["run", "--machine", "pc"],
        2,
        "[possible values: microvm, q35]",
    );
    assert_one_line_error(&["fuzz", "--cases", "0"], 2, "--cases");
}

#[test]
fn missing_kernel_image_is_a_harness_error() {
    assert_one_line_error(
        &["--kernel", "/nonexistent/kernel", "run"],
        3,
        "does not exist",
    );
}

#[test]
fn help_lists_every_subcommand() {
    let out = runner().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for s in ["build", "run", "test", "bench", "stress", "Exit status"] {
        assert!(help.contains(s), "{s} missing from:\n{help}");
    }
}

/// Starts `runner run` (own TMPDIR, 60 s timeout) against a fake QEMU
/// with `body`, stdout to `stdout`, stderr piped.
fn run_fake(body: &str, stdout: Stdio) -> (Fake, tempfile::TempDir, std::process::Child) {
    let fake = Fake::new(body);
    let tmp = tempfile::tempdir().expect("tmp");
    let path = format!(
        "{}:{}",
        fake.dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = runner()
        .args([
            "--kernel",
            &fake.script.to_string_lossy(),
            "run",
            "--accel",
            "tcg",
            "--timeout",
            "60",
        ])
        .env("PATH", path)
        .env("TMPDIR", tmp.path())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runner");
    (fake, tmp, child)
}

/// Starts `runner run` against a fake QEMU that hangs, sends `sig` once the
/// fake is up, and checks the exit status and that nothing is left.
fn interrupted(sig: Signal, expected: i32) {
    let (fake, tmp, mut child) =
        run_fake("spawn_child\nexec -a \"$0-spin\" sleep 300", Stdio::null());
    let t = Instant::now();
    while fake.leftovers().is_empty() || fake.leftovers().len() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "fake QEMU never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The swap disk's temp dir exists while QEMU runs.
    assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 1);
    kill(Pid::from_raw(child.id() as i32), sig).expect("signal");
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status.code(), Some(expected), "{err}");
    assert!(err.contains("killed 1 QEMU process group"), "{err}");
    assert_eq!(fake.leftovers(), Vec::<u32>::new(), "QEMU left behind");
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        0,
        "temp dir left behind"
    );
}

#[test]
fn sigterm_kills_qemu_and_exits_143() {
    interrupted(Signal::SIGTERM, 143);
}

#[test]
fn sigint_kills_qemu_and_exits_130() {
    interrupted(Signal::SIGINT, 130);
}

#[test]
fn closed_stdout_ends_the_runner_quietly_with_its_qemu() {
    // A fake QEMU that keeps printing console lines, which `run` streams
    // to a stdout nobody reads any more (`cargo xtask run | head -0`).
    let (fake, tmp, mut child) = run_fake(
        "spawn_child\nwhile true; do echo line; sleep 0.05; done",
        Stdio::piped(),
    );
    drop(child.stdout.take());
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the runner kept running with its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(
        status.code(),
        Some(runner::reaper::EXIT_BROKEN_PIPE),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(fake.leftovers(), Vec::<u32>::new(), "QEMU left behind");
    assert_eq!(
        std::fs::read_dir(tmp.path()).expect("ls").count(),
        0,
        "temp dir left behind"
    );
}

#[test]
fn test_writes_valid_junit_with_failures_and_their_evidence() {
    // A fake QEMU that always passes a probe: the panic case must fail.
    let fake = Fake::new(&common::probe_body());
    let dir = tempfile::tempdir().expect("dir");
    let junit = dir.path().join("out/junit.xml");
    let path = format!(
        "{}:{}",
        fake.dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = runner()
        .args(["--kernel", &fake.script.to_string_lossy()])
        .args([
            "test",
            "--boot-only",
            "--accel",
            "tcg",
            "--filter",
            "crash/panic",
        ])
        .arg("--junit")
        .arg(&junit)
        .env("PATH", &path)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");
    let cases = common::junit::parse(&std::fs::read_to_string(&junit).expect("junit"));
    let got: Vec<(&str, bool)> = cases.iter().map(|c| (c.name.as_str(), c.failed)).collect();
    assert_eq!(
        got,
        [
            ("microvm/crash/panic", true),
            ("harness/no-orphan-qemu", false)
        ]
    );
    assert!(
        cases[0].message.contains("expected Panic, got Pass"),
        "{:?}",
        cases[0]
    );
    assert_eq!(cases[0].classname, "microvm/crash");
    // The same with stdout on a full device: the JUnit file still holds
    // every case; exit 3 with one line saying why, no panic.
    std::fs::remove_file(&junit).expect("rm");
    let full = Stdio::from(std::fs::File::create("/dev/full").expect("/dev/full"));
    let out = runner()
        .args(["--kernel", &fake.script.to_string_lossy()])
        .args([
            "test",
            "--boot-only",
            "--accel",
            "tcg",
            "--filter",
            "crash/panic",
        ])
        .arg("--junit")
        .arg(&junit)
        .env("PATH", path)
        .stdout(full)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        err.matches("error: cannot write the report to standard output")
            .count(),
        1,
        "{err}"
    );
    let again = common::junit::parse(&std::fs::read_to_string(&junit).expect("junit"));
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(fake.leftovers().is_empty());
}
