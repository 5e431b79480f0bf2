//! Reads a JUnit XML report back with `quick-xml`, checking that it is
//! well-formed and that its counts agree with its test cases.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One `<testcase>`.
#[derive(Debug, Default, Clone)]
pub struct Case {
    pub name: String,
    pub classname: String,
    /// Has a `<failure>` or `<error>`.
    pub failed: bool,
    /// The failure's message attribute.
    pub message: String,
    pub system_out: String,
}

fn attr(e: &quick_xml::events::BytesStart, name: &str) -> String {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
        .unwrap_or_default()
}

/// Takes in an element that opens (`<x>`) or stands alone (`<x/>`): the
/// totals, a test case, or a failure of the last case.
fn element(
    e: &quick_xml::events::BytesStart,
    cases: &mut Vec<Case>,
    totals: &mut Option<(usize, usize)>,
) {
    match e.name().as_ref() {
        b"testsuites" => {
            let n = |k: &str| attr(e, k).parse::<usize>().expect("a count");
            *totals = Some((n("tests"), n("failures") + n("errors")));
        }
        b"testcase" => cases.push(Case {
            name: attr(e, "name"),
            classname: attr(e, "classname"),
            ..Case::default()
        }),
        b"failure" | b"error" => {
            let c = cases.last_mut().expect("failure outside a testcase");
            c.failed = true;
            c.message = attr(e, "message");
        }
        _ => {}
    }
}

/// The cases of a report; panics unless it is well-formed JUnit whose
/// `tests`/`failures` totals match its cases.
pub fn parse(xml: &str) -> Vec<Case> {
    let mut r = Reader::from_str(xml);
    let mut cases: Vec<Case> = Vec::new();
    let mut totals: Option<(usize, usize)> = None;
    let mut in_out = false;
    let mut depth = 0i32;
    loop {
        match r
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{xml}"))
        {
            Event::Start(e) => {
                depth += 1;
                element(&e, &mut cases, &mut totals);
                in_out |= e.name().as_ref() == b"system-out";
            }
            Event::Empty(e) => element(&e, &mut cases, &mut totals),
            Event::End(e) => {
                depth -= 1;
                if e.name().as_ref() == b"system-out" {
                    in_out = false;
                }
            }
            Event::Text(t) if in_out => {
                let s = t.decode().expect("utf-8");
                cases.last_mut().expect("a case").system_out.push_str(&s);
            }
            Event::GeneralRef(g) if in_out => {
                let name = g.decode().expect("utf-8");
                let c = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    _ => "?",
                };
                cases.last_mut().expect("a case").system_out.push_str(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced XML");
    let (tests, failures) = totals.expect("no <testsuites> element");
    assert_eq!(tests, cases.len(), "tests= does not count the test cases");
    assert_eq!(
        failures,
        cases.iter().filter(|c| c.failed).count(),
        "failures= does not count the failed cases"
    );
    cases
}
