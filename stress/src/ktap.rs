//! KTAP version 1 lines: what the kernel prints for its boot tests and what the
//! runner reads back. Only the flat form is used (no subtests).
//!
//! ```text
//! KTAP version 1
//! 1..3
//! ok 1 cpus_check_in
//! not ok 2 lock_counter # counter 399998 != 400000
//! ok 3 disk_roundtrip # SKIP no disk
//! ```

use alloc::format;
use alloc::string::String;

/// The kernel's boot tests (`mode=tests`), in the order they run and are
/// numbered: the kernel runs them, the runner expects each by name.
pub const BOOT_TESTS: [&str; 4] = [
    "cpus_check_in",
    "lock_counter",
    "disk_roundtrip",
    "timer_ticks",
];

/// One parsed KTAP line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KtapLine<'a> {
    /// `KTAP version N`
    Version(u32),
    /// `1..N`
    Plan(u32),
    /// `ok N desc [# directive]` / `not ok N desc [# directive]`
    Result {
        /// `ok` (else `not ok`).
        ok: bool,
        /// Test number.
        num: u32,
        /// Description.
        desc: &'a str,
        /// `SKIP`/`TODO` directive, if any.
        directive: Option<&'a str>,
    },
}

impl KtapLine<'_> {
    /// True for a result whose directive is `SKIP ...`.
    pub fn is_skip(&self) -> bool {
        matches!(self, KtapLine::Result { directive: Some(d), .. } if d.starts_with("SKIP"))
    }
}

/// Parses one line (without its newline). Returns `None` for anything that is
/// not a KTAP version, plan or result line (diagnostics start with `#`).
pub fn parse(line: &str) -> Option<KtapLine<'_>> {
    let line = line.trim_end_matches('\r');
    if let Some(v) = line.strip_prefix("KTAP version ") {
        return v.trim().parse().ok().map(KtapLine::Version);
    }
    if let Some(n) = line.strip_prefix("1..") {
        return n.trim().parse().ok().map(KtapLine::Plan);
    }
    let (ok, rest) = if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else {
        return None;
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let num: u32 = num.parse().ok()?;
    let (desc, directive) = match rest.split_once(" # ") {
        Some((d, dir)) => (d.trim(), Some(dir.trim())),
        None => match rest.strip_prefix("# ") {
            Some(dir) => ("", Some(dir.trim())),
            None => (rest.trim(), None),
        },
    };
    Some(KtapLine::Result {
        ok,
        num,
        desc,
        directive,
    })
}

/// The header every KTAP document starts with.
pub const HEADER: &str = "KTAP version 1";

/// `1..N`
pub fn plan(n: u32) -> String {
    format!("1..{n}")
}

/// A result line. Newlines in `desc`/`directive` are replaced so that a
/// result is always exactly one line.
pub fn result(ok: bool, num: u32, desc: &str, directive: Option<&str>) -> String {
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    let status = if ok { "ok" } else { "not ok" };
    match directive {
        Some(d) => format!("{status} {num} {} # {}", clean(desc), clean(d)),
        None => format!("{status} {num} {}", clean(desc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_results() {
        let l = result(false, 2, "lock_counter", Some("399998 != 400000"));
        assert_eq!(l, "not ok 2 lock_counter # 399998 != 400000");
        assert_eq!(
            parse(&l),
            Some(KtapLine::Result {
                ok: false,
                num: 2,
                desc: "lock_counter",
                directive: Some("399998 != 400000")
            })
        );
        let s = result(true, 3, "disk", Some("SKIP no disk"));
        assert!(parse(&s).unwrap().is_skip());
        assert_eq!(
            parse("ok 1 x"),
            Some(KtapLine::Result {
                ok: true,
                num: 1,
                desc: "x",
                directive: None
            })
        );
    }

    #[test]
    fn headers_and_noise() {
        assert_eq!(parse(HEADER), Some(KtapLine::Version(1)));
        assert_eq!(parse(&plan(7)), Some(KtapLine::Plan(7)));
        assert_eq!(parse("# diag"), None);
        assert_eq!(parse("okay 1"), None);
        assert_eq!(parse("ok x desc"), None);
        assert_eq!(parse("not ok"), None);
        assert_eq!(parse("1..lots"), None);
    }
}
