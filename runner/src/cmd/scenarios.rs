//! `cargo xtask scenarios`: every race forkswap knows, with its references,
//! its window, its oracles, the boot tests that guard it and its variants
//! (name, summary, the sites each touches, reference) — all read from the
//! scenario list of the `stress` crate.

use std::fmt::Write;

use stress::ScenarioId;
use stress::scenarios::Expect;

use crate::error::Result;

pub fn run() -> Result<u8> {
    print!("{}", listing());
    Ok(0)
}

/// The listing `scenarios` prints.
pub fn listing() -> String {
    let mut s = String::new();
    for (i, id) in ScenarioId::all().enumerate() {
        let sc = id.get();
        if i > 0 {
            s.push('\n');
        }
        let def = if id == ScenarioId::DEFAULT {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(s, "{}{def}: {}", sc.name, sc.title);
        let _ = writeln!(s, "  references: {}", sc.references.join("; "));
        let _ = writeln!(s, "  window:     {}", sc.window_doc);
        let oracles: Vec<&str> = sc.oracles.iter().map(|k| k.name()).collect();
        let _ = writeln!(s, "  oracles:    {}", oracles.join(", "));
        let guards: Vec<String> = sc
            .guards
            .iter()
            .map(|g| match g.expect {
                Expect::Caught(kinds) => {
                    let k: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
                    format!("{} caught ({})", g.variant, k.join(" or "))
                }
                Expect::CleanWithWindow => format!("{} clean with window hits", g.variant),
            })
            .collect();
        let _ = writeln!(s, "  boot tests: {}", guards.join("; "));
        let _ = writeln!(
            s,
            "  verdicts:   compare --until-confident on {} or more vCPUs",
            sc.verdict_cpus
        );
        let _ = writeln!(s, "  variants:");
        for v in id.variants() {
            let d = v.def();
            let _ = writeln!(s, "    {:<24}{}", d.name, d.summary);
            let sites = if d.touches.is_empty() {
                "none (the unpatched code)".to_string()
            } else {
                d.touches.join("; ")
            };
            let _ = writeln!(s, "    {:<24}sites: {sites}", "");
            let _ = writeln!(s, "    {:<24}from:  {}", "", d.reference);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_and_variant_is_listed() {
        let l = listing();
        for id in ScenarioId::all() {
            assert!(l.contains(id.get().title), "{l}");
            for v in id.variants() {
                assert!(
                    l.contains(&format!("    {:<24}{}", v.name(), v.summary())),
                    "{l}"
                );
            }
        }
        assert!(l.contains("d15293 (default)"), "{l}");
        assert!(
            l.contains("  verdicts:   compare --until-confident on 4 or more vCPUs"),
            "{l}"
        );
    }
}
