//! Test-case results and how they are reported: KTAP lines on stdout as the
//! suite goes, the closing `N passed, M failed` line, and JUnit XML
//! (`quick-junit`), one test case per suite case, grouped by prefix.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// The result of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseResult {
    /// `microvm/4cpu/lock_counter`, `microvm/crash/pagefault`, ...
    pub name: String,
    pub ok: bool,
    /// One line: why it failed, or what was seen when it passed.
    pub message: String,
    /// Longer evidence (last console lines, QEMU stderr), for failures.
    pub details: String,
    pub time: Duration,
}

/// Prints KTAP results as cases finish and keeps them for the summary.
/// Standard output is written with [`crate::out::stdout`]: the first write
/// error is kept (later lines are dropped) for [`Ktap::printed`], never a
/// panic.
#[derive(Debug, Default)]
pub struct Ktap {
    pub results: Vec<CaseResult>,
    /// The first error writing to standard output.
    write_error: Option<std::io::Error>,
}

impl Ktap {
    /// Prints the KTAP header and plan.
    pub fn start(&mut self, planned: usize) {
        self.emit(&format!(
            "{}\n{}\n",
            stress::ktap::HEADER,
            stress::ktap::plan(planned as u32)
        ));
    }

    /// A diagnostic line (`# ...`).
    pub fn diag(&mut self, text: &str) {
        let lines: String = text.lines().map(|l| format!("# {l}\n")).collect();
        self.emit(&lines);
    }

    /// Prints and keeps one result; details of a failure follow as diagnostics.
    pub fn case(&mut self, r: CaseResult) {
        let num = self.results.len() as u32 + 1;
        let msg = crate::error::one_line(&r.message);
        let directive = (!msg.is_empty()).then_some(msg.as_str());
        self.emit(&format!(
            "{}\n",
            stress::ktap::result(r.ok, num, &r.name, directive)
        ));
        if !r.ok && !r.details.is_empty() {
            self.diag(r.details.trim_end());
        }
        self.results.push(r);
    }

    /// Prints the closing [`Ktap::summary`] line and says whether everything
    /// printed reached standard output (the first error otherwise).
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.emit(&format!("{}\n", self.summary()));
        self.write_error.take().map_or(Ok(()), Err)
    }

    /// Whether a write to standard output failed (nothing more reaches it).
    pub fn write_failed(&self) -> bool {
        self.write_error.is_some()
    }

    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.ok).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// The closing line: `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// Writes `text` (and flushes) unless a write already failed.
    fn emit(&mut self, text: &str) {
        if self.write_error.is_none()
            && let Err(e) = crate::out::stdout(text)
        {
            self.write_error = Some(e);
        }
    }
}

/// The group of a case: everything before its last `/`.
fn group(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(g, _)| g)
}

/// Builds the JUnit report of a run.
pub fn junit(results: &[CaseResult]) -> Report {
    let mut report = Report::new("forkswap");
    let mut groups: Vec<&str> = Vec::new();
    for r in results {
        let g = group(&r.name);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in groups {
        let mut suite = TestSuite::new(g);
        for r in results.iter().filter(|r| group(&r.name) == g) {
            let status = if r.ok {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(r.message.as_str());
                if !r.details.is_empty() {
                    s.set_description(r.details.as_str());
                }
                s
            };
            let mut case = TestCase::new(r.name.as_str(), status);
            case.set_classname(g).set_time(r.time);
            if r.ok && !r.message.is_empty() {
                case.set_system_out(r.message.as_str());
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
}

/// Writes the JUnit XML file (atomically, as every report file).
pub fn write_junit(path: &Path, results: &[CaseResult]) -> anyhow::Result<()> {
    let xml = junit(results)
        .to_string()
        .context("cannot serialize the JUnit report")?;
    crate::json::write_file_atomic(path, xml.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, ok: bool) -> CaseResult {
        CaseResult {
            name: name.into(),
            ok,
            message: if ok {
                String::new()
            } else {
                "expected Panic, got Crashed".into()
            },
            details: String::new(),
            time: Duration::from_millis(5),
        }
    }

    #[test]
    fn junit_groups_cases_and_counts_failures() {
        let results = [
            case("microvm/1cpu/boot", true),
            case("microvm/1cpu/lock_counter", false),
            case("microvm/crash/panic", true),
        ];
        let xml = junit(&results).to_string().expect("xml");
        assert!(
            xml.contains(r#"<testsuites name="forkswap" tests="3" skipped="0" failures="1""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<testsuite name="microvm/1cpu" tests="2""#),
            "{xml}"
        );
        assert!(xml.contains("expected Panic, got Crashed"), "{xml}");
        let mut k = Ktap::default();
        k.results.extend(results);
        assert_eq!(k.summary(), "2 passed, 1 failed");
    }
}
