//! The verdict mapping on synthetic consoles: no QEMU needed.

use std::time::Duration;

use stress::failure::{Failure, FailureKind};
use stress::ktap;
use stress::proto::{self, CpuWait, Exception, Frame, Record};
use stress::scenarios::d15293;

use super::*;
use crate::console::{Console, LineEnd};

fn line(seq: u64, rec: Record) -> String {
    proto::encode(&Frame { seq, cpu: 0, rec })
}

fn hello() -> Record {
    Record::Hello {
        kernel: "0.1.0".into(),
        cpus: 2,
        mem_mib: 256,
        transport: "mmio".into(),
        cmdline: "mode=probe".into(),
    }
}

fn ready() -> Record {
    Record::Ready {
        cpus: 2,
        boot_ns: 1_000_000,
    }
}

fn done(v: proto::Verdict) -> Record {
    Record::Done {
        verdict: v,
        ms: 5,
        stats: None,
    }
}

fn panic_rec(vector: u8, stack_guard: bool) -> Record {
    Record::Panic {
        cpu: 1,
        message: "unexpected exception".into(),
        exception: Some(Exception {
            vector,
            name: "page fault".into(),
            error_code: Some(2),
            rip: 0x10_0000,
            rsp: 0x20_0000,
            cr2: Some(0xdead_0000),
            stack_guard,
        }),
    }
}

/// A console fed with whole lines, one every 100 ms.
fn console(lines: &[String]) -> Console {
    let mut c = Console::new(20);
    for (i, l) in lines.iter().enumerate() {
        c.push(
            l.as_bytes(),
            Duration::from_millis(100 * i as u64),
            LineEnd::Newline,
        );
    }
    c
}

fn judge_exit(c: &Console, exit: Exit) -> Judgement {
    judge_full(c, exit, &[], Duration::from_secs(1))
}

fn judge_full(c: &Console, exit: Exit, stderr: &[&str], elapsed: Duration) -> Judgement {
    let stderr: Vec<String> = stderr.iter().map(|s| s.to_string()).collect();
    judge(
        c,
        &Ending {
            exit: &exit,
            stderr_tail: &stderr,
            elapsed,
            quiet: quiet_window(Duration::from_secs(3)),
        },
    )
}

const PASS: Exit = Exit::Status(33);

fn probe_lines() -> Vec<String> {
    vec![
        line(0, hello()),
        line(1, ready()),
        line(2, done(proto::Verdict::Pass)),
    ]
}

fn tests_lines(results: &[(bool, &str, Option<&str>)], plan: u32) -> Vec<String> {
    let mut v = vec![
        line(0, hello()),
        line(1, ready()),
        ktap::HEADER.into(),
        ktap::plan(plan),
    ];
    for (i, (ok, name, dir)) in results.iter().enumerate() {
        v.push(ktap::result(*ok, i as u32 + 1, name, *dir));
    }
    v.push(line(2, done(proto::Verdict::Pass)));
    v
}

#[test]
fn clean_probe_passes() {
    let j = judge_exit(&console(&probe_lines()), PASS);
    assert_eq!(j.verdict, Verdict::Pass, "{j:?}");
}

#[test]
fn firmware_text_and_diagnostics_do_not_spoil_a_pass() {
    let mut l = vec!["SeaBIOS (version 1.16)".to_string(), "".into()];
    l.extend(probe_lines());
    l.insert(3, "# cpu 1 up".into());
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Pass, "{j:?}");
}

#[test]
fn all_ktap_results_ok_passes() {
    let l = tests_lines(
        &[(true, "cpus_check_in", None), (true, "lock_counter", None)],
        2,
    );
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Pass, "{j:?}");
}

#[test]
fn a_pass_needs_done_pass_and_the_pass_status() {
    let j = judge_exit(&console(&probe_lines()), Exit::Status(35));
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    let l = vec![
        line(0, hello()),
        line(1, ready()),
        line(2, done(proto::Verdict::Fail)),
    ];
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    assert!(j.reason.contains("Done record says fail"), "{j:?}");
    let l = vec![line(0, hello()), line(1, ready())];
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Crashed, "{j:?}");
    assert!(j.reason.contains("no Done"), "{j:?}");
}

#[test]
fn missing_ktap_results_fail() {
    let l = tests_lines(
        &[
            (true, "cpus_check_in", None),
            (true, "lock_counter", None),
            (true, "disk_roundtrip", None),
        ],
        4,
    );
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    assert!(j.reason.contains("plan says 4 tests but only 3"), "{j:?}");
}

#[test]
fn failed_ktap_result_fails() {
    let l = tests_lines(
        &[
            (true, "cpus_check_in", None),
            (false, "lock_counter", Some("399998 != 400000")),
        ],
        2,
    );
    let j = judge_exit(&console(&l), Exit::Status(35));
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    assert!(
        j.reason.contains("lock_counter (399998 != 400000)"),
        "{j:?}"
    );
    // Even if the kernel claimed Pass.
    assert_eq!(judge_exit(&console(&l), PASS).verdict, Verdict::Fail);
}

#[test]
fn skipped_ktap_result_is_not_a_failure_of_the_boot() {
    let l = tests_lines(
        &[
            (true, "a", None),
            (true, "disk_roundtrip", Some("SKIP no disk")),
        ],
        2,
    );
    assert_eq!(judge_exit(&console(&l), PASS).verdict, Verdict::Pass);
}

#[test]
fn failure_record_fails() {
    let f = Failure {
        kind: FailureKind::Repopulated,
        seed: 7,
        scenario: stress::ScenarioId::DEFAULT,
        variant: d15293::BASELINE,
        cpu: 1,
        ms: 3,
        detail: "pindex 3 moved twice".into(),
        traces: vec![],
    };
    let l = vec![
        line(0, hello()),
        line(1, ready()),
        line(2, Record::Failure(f)),
        line(3, done(proto::Verdict::Fail)),
    ];
    let j = judge_exit(&console(&l), Exit::Status(35));
    assert_eq!(j.verdict, Verdict::Fail);
    assert!(
        j.reason.contains("repopulated") && j.reason.contains("seed 0x7"),
        "{j:?}"
    );
}

#[test]
fn panic_record_names_the_exception() {
    let l = vec![
        line(0, hello()),
        line(1, ready()),
        line(2, panic_rec(14, false)),
    ];
    let j = judge_exit(&console(&l), Exit::Status(37));
    assert_eq!(j.verdict, Verdict::Exception);
    assert!(
        j.reason.contains("vector 14") && j.reason.contains("cr2 0xdead0000"),
        "{j:?}"
    );
    let l = vec![line(0, hello()), line(1, panic_rec(8, true))];
    let j = judge_exit(&console(&l), Exit::Status(37));
    assert!(j.reason.contains("stack guard"), "{j:?}");
    // A Panic record wins over whatever status QEMU had.
    assert_eq!(judge_exit(&console(&l), PASS).verdict, Verdict::Exception);
    assert_eq!(
        judge_exit(&console(&l), Exit::TimedOut).verdict,
        Verdict::Exception
    );
    // Without an exception it is a plain panic.
    let p = Record::Panic {
        cpu: 0,
        message: "panicked at x.rs:1:1: boom".into(),
        exception: None,
    };
    let l = vec![line(0, hello()), line(1, p)];
    let j = judge_exit(&console(&l), Exit::Status(37));
    assert_eq!(j.verdict, Verdict::Panic, "{j:?}");
}

#[test]
fn panic_status_without_record_is_still_a_panic() {
    let l = vec![line(0, hello())];
    assert_eq!(
        judge_exit(&console(&l), Exit::Status(37)).verdict,
        Verdict::Panic
    );
}

#[test]
fn reset_is_a_triple_fault() {
    let l = vec![line(0, hello()), line(1, ready())];
    let j = judge_exit(&console(&l), Exit::Status(0));
    assert_eq!(j.verdict, Verdict::TripleFault, "{j:?}");
    assert_eq!(
        judge_exit(&console(&[]), Exit::Status(0)).verdict,
        Verdict::TripleFault
    );
    // status 0 after Done: the kernel did not exit properly.
    assert_eq!(
        judge_exit(&console(&probe_lines()), Exit::Status(0)).verdict,
        Verdict::Crashed
    );
}

#[test]
fn timeout_while_printing_is_a_hang() {
    let mut l = vec![line(0, hello()), line(1, ready())];
    l.extend((0..28).map(|_| "# still here".to_string()));
    // 30 lines, the last at 2.9 s; timeout at 3 s.
    let j = judge_full(&console(&l), Exit::TimedOut, &[], Duration::from_secs(3));
    assert_eq!(j.verdict, Verdict::Hang, "{j:?}");
    assert!(j.reason.contains("still here"), "{j:?}");
}

#[test]
fn silent_timeouts_are_hang_silent() {
    let t = Duration::from_secs(3);
    let j = judge_full(&console(&[]), Exit::TimedOut, &[], t);
    assert_eq!(j.verdict, Verdict::HangSilent);
    assert!(j.reason.contains("no console output at all"), "{j:?}");
    let l = vec![line(0, hello()), line(1, ready())];
    let j = judge_full(&console(&l), Exit::TimedOut, &[], t);
    assert_eq!(j.verdict, Verdict::HangSilent);
    assert!(j.reason.contains("since Ready"), "{j:?}");
    // Output before Ready only, then silence.
    let l = vec![line(0, hello()), "# bringing up cpu 1".into()];
    let j = judge_full(&console(&l), Exit::TimedOut, &[], t);
    assert_eq!(j.verdict, Verdict::HangSilent, "{j:?}");
}

#[test]
fn kernel_watchdog_hang_record_is_a_hang() {
    let l = vec![
        line(0, hello()),
        line(1, ready()),
        line(
            2,
            Record::Hang {
                ms: 2000,
                waits: vec![CpuWait {
                    cpu: 0,
                    wait: "pip obj 3".into(),
                    stalled_ms: 2000,
                }],
                traces: vec![],
            },
        ),
    ];
    let j = judge_exit(&console(&l), Exit::Status(39));
    assert_eq!(j.verdict, Verdict::Hang);
    assert!(j.reason.contains("cpu0 pip obj 3"), "{j:?}");
    assert_eq!(
        judge_exit(&console(&l[..2]), Exit::Status(39)).verdict,
        Verdict::Hang
    );
}

#[test]
fn binary_junk_is_garbled_even_when_it_then_hangs() {
    let mut c = console(&[line(0, hello()), line(1, ready())]);
    c.push(
        b"\x1b[2J\x00\x07abc",
        Duration::from_millis(300),
        LineEnd::Newline,
    );
    c.push(
        &[0xff, 0xfe, b'x'],
        Duration::from_millis(310),
        LineEnd::Newline,
    );
    let j = judge_full(&c, Exit::TimedOut, &[], Duration::from_secs(3));
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
    assert!(
        j.reason.contains("binary junk") && j.reason.contains("+1 more"),
        "{j:?}"
    );
}

#[test]
fn binary_junk_without_newline_cut_by_the_timeout_is_garbled() {
    let mut c = console(&[line(0, hello()), line(1, ready())]);
    c.push(b"\x01\x02junk", Duration::from_millis(300), LineEnd::Eof);
    let j = judge_full(&c, Exit::TimedOut, &[], Duration::from_secs(3));
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
}

#[test]
fn a_damaged_record_spoils_an_otherwise_passing_boot() {
    let mut l = probe_lines();
    l[1] = l[1].replacen("cpus", "cpuz", 1);
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
    assert!(j.reason.contains("bad checksum"), "{j:?}");
}

#[test]
fn interleaved_lines_are_garbled() {
    // Two CPUs writing into one line: the first record is cut by the second.
    let a = line(1, ready());
    let b = line(2, done(proto::Verdict::Pass));
    let mixed = format!("{}{}", &a[..a.len() / 2], b);
    let l = vec![line(0, hello()), mixed];
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
}

#[test]
fn lost_or_misordered_records_are_garbled() {
    let l = vec![line(0, hello()), line(2, done(proto::Verdict::Pass))];
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled);
    assert!(j.reason.contains("seq 2 where 1 was expected"), "{j:?}");
    let l = vec![line(0, ready()), line(1, done(proto::Verdict::Pass))];
    let j = judge_exit(&console(&l), PASS);
    assert!(
        j.reason.contains("first record is Ready, not Hello"),
        "{j:?}"
    );
    let mut l = probe_lines();
    l.push(line(3, ready()));
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled);
    assert!(j.reason.contains("after Done"), "{j:?}");
}

#[test]
fn early_exit_is_its_own_verdict() {
    let j = judge_exit(&console(&[]), PASS);
    assert_eq!(j.verdict, Verdict::EarlyExit);
    assert!(j.reason.contains("early exit"), "{j:?}");
    // Firmware text but no record: still an early exit.
    let j = judge_exit(&console(&["SeaBIOS".into()]), PASS);
    assert_eq!(j.verdict, Verdict::EarlyExit, "{j:?}");
    // Records but no Done: crashed, not an early exit.
    let j = judge_exit(&console(&[line(0, hello())]), PASS);
    assert_eq!(j.verdict, Verdict::Crashed, "{j:?}");
}

#[test]
fn a_missing_disk_is_named_from_the_panic_record() {
    let rec = |message: &str| Record::Panic {
        cpu: 0,
        message: message.into(),
        exception: None,
    };
    let l = vec![
        line(0, hello()),
        line(1, ready()),
        line(
            2,
            rec("mode=stress needs the virtio-blk swap disk, and none was found"),
        ),
    ];
    let j = judge_exit(&console(&l), Exit::Status(37));
    assert_eq!(j.verdict, Verdict::DiskMissing, "{j:?}");
    assert!(j.reason.contains("swap disk"), "{j:?}");
    assert_eq!(Verdict::DiskMissing.exit_status(), 3);
    let l = vec![
        line(0, hello()),
        line(
            1,
            rec("mode=diskbench needs the virtio-blk disk, and none was found"),
        ),
    ];
    assert_eq!(
        judge_exit(&console(&l), Exit::Status(37)).verdict,
        Verdict::DiskMissing
    );
    // Another panic that mentions the disk is still a panic.
    let l = vec![line(0, hello()), line(1, rec("virtio-blk request failed"))];
    assert_eq!(
        judge_exit(&console(&l), Exit::Status(37)).verdict,
        Verdict::Panic
    );
}

#[test]
fn mode_tests_without_ktap_fails() {
    let mut h = hello();
    if let Record::Hello { cmdline, .. } = &mut h {
        *cmdline = "mode=tests expect_cpus=2 virtio_mmio.device=512@0xfeb00e00:12".into();
    }
    let l = vec![
        line(0, h),
        line(1, ready()),
        line(2, done(proto::Verdict::Pass)),
    ];
    let c = console(&l);
    assert_eq!(c.mode(), Some("tests"));
    let j = judge_exit(&c, PASS);
    assert_eq!(j.verdict, Verdict::Fail, "{j:?}");
    assert!(j.reason.contains("no KTAP output"), "{j:?}");
}

#[test]
fn ktap_out_of_place_is_garbled() {
    // Without its version line.
    let mut l = tests_lines(&[(true, "a", None)], 1);
    l.remove(2);
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
    assert!(
        j.reason.contains("before the 'KTAP version 1' line"),
        "{j:?}"
    );
    // After Done.
    let mut l = probe_lines();
    l.extend([
        ktap::HEADER.to_string(),
        ktap::plan(1),
        ktap::result(true, 1, "a", None),
    ]);
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
    assert!(j.reason.contains("after Done"), "{j:?}");
    // Before Hello.
    let mut l = vec![ktap::HEADER.to_string()];
    l.extend(probe_lines());
    let j = judge_exit(&console(&l), PASS);
    assert!(j.reason.contains("before Hello"), "{j:?}");
}

#[test]
fn text_outside_the_protocol_after_hello_is_garbled() {
    let mut l = probe_lines();
    l.insert(1, "some text".into());
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
    assert!(j.reason.contains("text outside the protocol"), "{j:?}");
}

#[test]
fn record_lines_must_be_byte_exact() {
    let good = line(1, ready());
    let (body, crc) = good.rsplit_once(" ~").expect("crc");
    // Neither `parse` nor the console takes a checksum other than exactly
    // the 8 lowercase hex digits `encode` writes.
    for bad in [format!("{body} ~0{crc}"), format!("{body} ~+{crc}")] {
        assert!(
            matches!(proto::parse(&bad), proto::Line::Garbled(_)),
            "{bad}"
        );
        let l = vec![
            line(0, hello()),
            bad.clone(),
            line(2, done(proto::Verdict::Pass)),
        ];
        let j = judge_exit(&console(&l), PASS);
        assert_eq!(j.verdict, Verdict::Garbled, "{bad}: {j:?}");
    }
    // A record cut by a newline leaves an '@' line behind.
    let l = vec![
        "@".to_string(),
        line(0, hello()),
        line(1, ready()),
        line(2, done(proto::Verdict::Pass)),
    ];
    let j = judge_exit(&console(&l), PASS);
    assert_eq!(j.verdict, Verdict::Garbled, "{j:?}");
    assert!(j.reason.contains("starts like a record"), "{j:?}");
}

#[test]
fn console_cut_mid_line_is_crashed() {
    let mut c = console(&[line(0, hello()), line(1, ready())]);
    let half = line(2, done(proto::Verdict::Pass));
    c.push(
        &half.as_bytes()[..half.len() / 2],
        Duration::from_millis(300),
        LineEnd::Eof,
    );
    let j = judge_exit(&c, PASS);
    assert_eq!(j.verdict, Verdict::Crashed, "{j:?}");
    assert!(j.reason.contains("cut mid-line"), "{j:?}");
    // Even a whole record without its newline is not trusted.
    let mut c = console(&[line(0, hello()), line(1, ready())]);
    c.push(half.as_bytes(), Duration::from_millis(300), LineEnd::Eof);
    assert_eq!(judge_exit(&c, PASS).verdict, Verdict::Crashed);
    // An empty tail after the last newline is nothing.
    let mut c = console(&probe_lines());
    c.push(b"", Duration::from_millis(400), LineEnd::Eof);
    assert_eq!(judge_exit(&c, PASS).verdict, Verdict::Pass);
}

#[test]
fn overlong_line_is_garbled() {
    let mut c = console(&[line(0, hello())]);
    c.push(&[b'x'; 64], Duration::from_millis(100), LineEnd::Overlong);
    c.push(b"xx", Duration::from_millis(100), LineEnd::Newline);
    c.push(
        line(1, ready()).as_bytes(),
        Duration::from_millis(100),
        LineEnd::Newline,
    );
    c.push(
        line(2, done(proto::Verdict::Pass)).as_bytes(),
        Duration::from_millis(100),
        LineEnd::Newline,
    );
    assert_eq!(judge_exit(&c, PASS).verdict, Verdict::Garbled);
}

#[test]
fn qemu_errors_are_qemu_failed() {
    let j = judge_full(
        &console(&[]),
        Exit::Status(1),
        &[
            "qemu-system-x86_64: -accel kvm: Could not access KVM kernel module: No such file or directory",
            "",
        ],
        Duration::from_millis(20),
    );
    assert_eq!(j.verdict, Verdict::QemuFailed);
    assert!(j.reason.ends_with("No such file or directory"), "{j:?}");
    let j = judge_exit(
        &console(&[]),
        Exit::SpawnFailed("qemu: No such file".into()),
    );
    assert_eq!(j.verdict, Verdict::QemuFailed);
    // Status 1 with nothing on stderr is not QEMU's own error.
    assert_eq!(
        judge_exit(&console(&[]), Exit::Status(1)).verdict,
        Verdict::Crashed
    );
}

#[test]
fn accelerator_stopping_the_guest_is_qemu_failed() {
    let l = vec![line(0, hello()), line(1, ready())];
    let j = judge_exit(
        &console(&l),
        Exit::GuestStopped("KVM internal error. Suberror: 1".into()),
    );
    assert_eq!(j.verdict, Verdict::QemuFailed, "{j:?}");
    assert!(
        j.reason.contains("KVM internal error") && j.reason.contains("after Ready"),
        "{j:?}"
    );
    assert!(crate::boot::guest_stopped(
        "KVM internal error. Suberror: 1"
    ));
    assert!(!crate::boot::guest_stopped(
        "qemu: warning: host doesn't support requested feature"
    ));
}

#[test]
fn killed_or_unknown_status_is_crashed() {
    let l = vec![line(0, hello()), line(1, ready())];
    let j = judge_exit(&console(&l), Exit::Signal(9));
    assert_eq!(j.verdict, Verdict::Crashed);
    assert!(
        j.reason.contains("signal 9") && j.reason.contains("after Ready"),
        "{j:?}"
    );
    assert_eq!(
        judge_exit(&console(&l), Exit::Status(3)).verdict,
        Verdict::Crashed
    );
}

#[test]
fn verdict_names_and_exit_statuses() {
    let names: Vec<&str> = Verdict::ALL.iter().map(Verdict::name).collect();
    assert_eq!(
        names,
        [
            "Pass",
            "Fail",
            "Panic",
            "Exception",
            "DiskMissing",
            "TripleFault",
            "Hang",
            "HangSilent",
            "Garbled",
            "EarlyExit",
            "Crashed",
            "QemuFailed",
            "Infra"
        ]
    );
    assert_eq!(Verdict::Pass.exit_status(), 0);
    assert_eq!(Verdict::Hang.exit_status(), 1);
    assert_eq!(Verdict::QemuFailed.exit_status(), 3);
}
