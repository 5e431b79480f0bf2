//! The boot engine against a fake QEMU: timeouts, process-group kills,
//! stderr, cut lines, parallel boots. No QEMU or kernel needed.

mod common;

use std::time::{Duration, Instant};

use common::*;
use runner::boot::boot;
use runner::verdict::Verdict;

#[test]
fn passing_boot_has_timings_and_leaves_nothing() {
    let f = Fake::new(&probe_body());
    let mut seen = Vec::new();
    let out = boot(&spec(&f.script, Duration::from_secs(10)), &mut |l| {
        seen.push(l.text.clone())
    });
    assert_eq!(*out.verdict(), Verdict::Pass, "{:?}", out.judgement);
    assert_eq!(seen.len(), 3);
    let t = out.timings;
    let (h, r, e) = (
        t.hello.expect("hello"),
        t.ready.expect("ready"),
        t.exit.expect("exit"),
    );
    assert!(h <= r && r <= e, "{t:?}");
    assert!(
        out.command.contains("-append mode=probe"),
        "{}",
        out.command
    );
    // The swap disk was passed and is gone.
    let disk = out
        .command
        .split("file=")
        .nth(1)
        .and_then(|s| s.split(",format").next())
        .expect("disk in command line")
        .to_string();
    assert!(!std::path::Path::new(&disk).exists(), "{disk} left behind");
    assert!(f.leftovers().is_empty());
}

#[test]
fn busy_timeout_is_hang_and_kills_the_whole_group() {
    let body = format!(
        "spawn_child\n{}\n{}\nwhile true; do echo '# still here'; sleep 0.1; done",
        print_record(0, hello()),
        print_record(1, ready())
    );
    let f = Fake::new(&body);
    let t = Instant::now();
    let out = boot(&spec(&f.script, Duration::from_millis(1500)), &mut |_| {});
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(*out.verdict(), Verdict::Hang, "{:?}", out.judgement);
    assert_eq!(out.timings.exit, None);
    assert_eq!(f.leftovers(), Vec::<u32>::new(), "processes left behind");
}

#[test]
fn silent_timeout_is_hang_silent() {
    let body = format!(
        "{}\n{}\nexec -a \"$0-spin\" sleep 300",
        print_record(0, hello()),
        print_record(1, ready())
    );
    let f = Fake::new(&body);
    let out = boot(&spec(&f.script, Duration::from_secs(1)), &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::HangSilent, "{:?}", out.judgement);
    assert!(
        out.judgement.reason.contains("since Ready"),
        "{:?}",
        out.judgement
    );
    assert!(f.leftovers().is_empty());
}

#[test]
fn exit_while_a_child_holds_the_console_is_not_a_hang() {
    let f = Fake::new(&format!("spawn_child\n{}", probe_body()));
    let t = Instant::now();
    let out = boot(&spec(&f.script, Duration::from_secs(20)), &mut |_| {});
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(*out.verdict(), Verdict::Pass, "{:?}", out.judgement);
    assert!(f.leftovers().is_empty());
}

#[test]
fn qemu_error_on_stderr_is_qemu_failed() {
    let f = Fake::new(
        "echo 'qemu-system-x86_64: -accel kvm: Could not access KVM kernel module: Permission denied' >&2\nexit 1",
    );
    let out = boot(&spec(&f.script, Duration::from_secs(10)), &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::QemuFailed);
    assert!(
        out.judgement.reason.ends_with("Permission denied"),
        "{:?}",
        out.judgement
    );
}

#[test]
fn missing_qemu_is_qemu_failed() {
    let out = boot(
        &spec(
            std::path::Path::new("/nonexistent/qemu-system-x86_64"),
            Duration::from_secs(1),
        ),
        &mut |_| {},
    );
    assert_eq!(*out.verdict(), Verdict::QemuFailed);
    assert!(
        out.judgement.reason.contains("did not start"),
        "{:?}",
        out.judgement
    );
}

#[test]
fn cut_line_is_crashed_and_early_exit_is_early_exit() {
    let done_line = stress::proto::encode(&stress::proto::Frame {
        seq: 2,
        cpu: 0,
        rec: done(),
    });
    let half = &done_line[..done_line.len() / 2];
    let f = Fake::new(&format!(
        "{}\n{}\nprintf '%s' '{half}'\nexit 33",
        print_record(0, hello()),
        print_record(1, ready())
    ));
    let out = boot(&spec(&f.script, Duration::from_secs(10)), &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::Crashed, "{:?}", out.judgement);
    assert!(
        out.judgement.reason.contains("cut mid-line"),
        "{:?}",
        out.judgement
    );
    let f = Fake::new("exit 33");
    let out = boot(&spec(&f.script, Duration::from_secs(10)), &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::EarlyExit);
    assert!(
        out.judgement.reason.contains("early exit"),
        "{:?}",
        out.judgement
    );
}

#[test]
fn garbage_then_hang_is_garbled() {
    let body = format!(
        "{}\n{}\nhead -c 2048 /dev/urandom\necho\nexec -a \"$0-spin\" sleep 300",
        print_record(0, hello()),
        print_record(1, ready())
    );
    let f = Fake::new(&body);
    let out = boot(&spec(&f.script, Duration::from_secs(1)), &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::Garbled, "{:?}", out.judgement);
    assert!(f.leftovers().is_empty());
}

#[test]
fn several_boots_run_at_once() {
    let f = Fake::new(&format!("sleep 1\n{}", probe_body()));
    let t = Instant::now();
    let outs: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| boot(&spec(&f.script, Duration::from_secs(20)), &mut |_| {})))
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for o in &outs {
        assert_eq!(*o.verdict(), Verdict::Pass, "{:?}", o.judgement);
    }
    // Four 1 s boots one after the other would take over 4 s.
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn qemu_refusing_io_uring_boots_again_without_it() {
    // Fails like a QEMU whose host cannot do io_uring, boots otherwise.
    let body = format!(
        "if [[ \"$*\" == *aio=io_uring* ]]; then echo 'qemu-system-x86_64: -drive id=swap: Unable to use io_uring: failed to init linux io_uring ring: Function not implemented' >&2; exit 1; fi\n{}",
        probe_body()
    );
    let f = Fake::new(&body);
    let out = boot(&spec(&f.script, Duration::from_secs(10)), &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::Pass, "{:?}", out.judgement);
    assert!(!out.command.contains("io_uring"), "{}", out.command);
}

#[test]
fn kvm_that_aborts_on_cpu_max_boots_with_the_next_cpu_model() {
    // Dies like this host's QEMU under `-accel kvm -cpu max` (and `host`),
    // boots with any other model.
    let body = format!(
        "if [[ \"$*\" == *'-cpu max '* ]]; then\n\
         echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\n\
         echo \"qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed.\" >&2\n\
         kill -ABRT $$\nfi\n{}",
        probe_body()
    );
    let f = Fake::new(&body);
    let mut s = spec(&f.script, Duration::from_secs(10));
    s.accel = runner::qemu::Accel::Kvm;
    let out = boot(&s, &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::Pass, "{:?}", out.judgement);
    assert!(
        out.command
            .contains("-accel kvm -cpu max,-arch-capabilities "),
        "{}",
        out.command
    );
    // Every later KVM boot uses that model at once; TCG keeps `max`.
    assert_eq!(
        runner::boot::cpu_model(runner::qemu::Accel::Kvm),
        "max,-arch-capabilities"
    );
    assert_eq!(runner::boot::cpu_model(runner::qemu::Accel::Tcg), "max");
    // A QEMU that fails for another reason is not retried with other models.
    let f = Fake::new("echo 'qemu: could not load kernel' >&2; exit 1");
    let mut s = spec(&f.script, Duration::from_secs(10));
    s.accel = runner::qemu::Accel::Kvm;
    let out = boot(&s, &mut |_| {});
    assert_eq!(*out.verdict(), Verdict::QemuFailed, "{:?}", out.judgement);
    assert_eq!(
        runner::boot::cpu_model(runner::qemu::Accel::Kvm),
        "max,-arch-capabilities"
    );
    assert!(f.leftovers().is_empty());
}
