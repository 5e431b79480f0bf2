//! No module cycle in the runner: reads every module of `runner/src`, takes
//! the `crate::…` paths its non-test code names (in `use` lines and inline),
//! resolves each to the module file it points into, and fails on any cycle
//! of that graph (a strongly connected component of more than one module),
//! naming the modules and the edges that close it.
//!
//! Test code (`#[cfg(test)]` modules, inline or in their own file) is left
//! out: test helpers may depend on what they test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`cmd::compare`) → its source.
type Sources = BTreeMap<String, String>;
/// Module → the modules it names, each with one line that names it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Every module file under `src` (not the crate roots), by module path.
fn read_modules(src: &Path) -> Sources {
    fn walk(dir: &Path, prefix: &str, out: &mut Sources) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            let join = |n: &str| {
                if prefix.is_empty() {
                    n.to_string()
                } else {
                    format!("{prefix}::{n}")
                }
            };
            if p.is_dir() {
                walk(&p, &join(&name), out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let module = match stem {
                    "lib" | "main" if prefix.is_empty() => continue,
                    "mod" => prefix.to_string(),
                    _ => join(stem),
                };
                out.insert(module, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = Sources::new();
    walk(src, "", &mut out);
    out
}

/// The source without comments and without `#[cfg(test)]` items (an inline
/// `mod … { … }` is cut to its closing brace; `mod x;` is cut to its `;`).
fn non_test_code(source: &str) -> String {
    let code: String = source
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find('{'), item.find(';')) {
            (Some(open), semi) if semi.is_none_or(|s| open < s) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (_, Some(semi)) => semi + 1,
            _ => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Modules declared only under `#[cfg(test)]` (`#[cfg(test)] mod testkit;`).
fn test_only_modules(sources: &Sources, roots: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let all = sources
        .iter()
        .map(|(m, s)| (m.clone(), s.as_str()))
        .chain(roots.iter().map(|s| (String::new(), *s)));
    for (module, source) in all {
        let mut lines = source.lines().map(str::trim);
        while let Some(l) = lines.next() {
            if l != "#[cfg(test)]" {
                continue;
            }
            if let Some(next) = lines.next() {
                let decl = next.strip_prefix("pub ").unwrap_or(next);
                if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.strip_suffix(';')) {
                    let name = name.trim();
                    out.insert(if module.is_empty() {
                        name.to_string()
                    } else {
                        format!("{module}::{name}")
                    });
                }
            }
        }
    }
    out
}

/// The `crate::` paths in `code`, each as its segments (`crate::{a, b::c}`
/// gives `a` and `b::c`).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    fn ident(s: &str) -> (&str, &str) {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (&s[..end], &s[end..])
    }
    /// Parses a path or a `{…}` group after `prefix::`, pushing full paths.
    fn tree<'a>(s: &'a str, prefix: &[String], out: &mut Vec<Vec<String>>) -> &'a str {
        let s = s.trim_start();
        if let Some(mut inner) = s.strip_prefix('{') {
            loop {
                inner = inner.trim_start();
                if let Some(after) = inner.strip_prefix('}') {
                    return after;
                }
                if inner.is_empty() {
                    return inner;
                }
                inner = tree(inner, prefix, out);
                inner = inner.trim_start();
                inner = inner.strip_prefix(',').unwrap_or(inner);
            }
        }
        let (name, mut rest) = ident(s);
        if name.is_empty() {
            // `*` or something else: the prefix alone.
            out.push(prefix.to_vec());
            return s.get(1..).unwrap_or("");
        }
        let mut path = prefix.to_vec();
        path.push(name.to_string());
        if let Some(after) = rest.strip_prefix("::") {
            return tree(after, &path, out);
        }
        if let Some(after) = rest.trim_start().strip_prefix("as ") {
            rest = ident(after.trim_start()).1;
        }
        out.push(path);
        rest
    }
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            rest = after;
            continue;
        }
        rest = tree(after, &[], &mut out);
    }
    out
}

/// Which module each module names, keeping one line per edge as evidence.
fn graph(sources: &Sources, skip: &BTreeSet<String>) -> Graph {
    let known: BTreeSet<&String> = sources.keys().collect();
    let mut g = Graph::new();
    for (module, source) in sources {
        if skip.contains(module) {
            continue;
        }
        let edges = g.entry(module.clone()).or_default();
        let code = non_test_code(source);
        for line in code.lines() {
            for path in crate_paths(line) {
                // The longest prefix that is a module file.
                let target = (1..=path.len())
                    .rev()
                    .map(|n| path[..n].join("::"))
                    .find(|p| known.contains(p));
                if let Some(t) = target
                    && &t != module
                    && !skip.contains(&t)
                {
                    edges.entry(t).or_insert_with(|| line.trim().to_string());
                }
            }
        }
    }
    g
}

/// The cycles: strongly connected components of more than one module
/// (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.g.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = Tarjan {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

/// A cycle, shown with the lines that make its edges.
fn describe(g: &Graph, scc: &[String]) -> String {
    let mut s = format!("cycle among {}:", scc.join(", "));
    for a in scc {
        for (b, line) in &g[a] {
            if scc.contains(b) {
                s.push_str(&format!("\n  {a} -> {b}: {line}"));
            }
        }
    }
    s
}

#[test]
fn the_runner_has_no_module_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let sources = read_modules(&src);
    assert!(
        sources.len() > 40 && sources.contains_key("cmd::compare"),
        "did not read the runner's modules: {:?}",
        sources.keys().collect::<Vec<_>>()
    );
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let skip = test_only_modules(&sources, &[&lib]);
    assert!(skip.contains("testkit"), "{skip:?}");
    let g = graph(&sources, &skip);
    // The graph is real: known edges are there.
    assert!(g["suite"].contains_key("suite_plan"), "{:?}", g["suite"]);
    assert!(g["accel"].contains_key("boot"), "{:?}", g["accel"]);
    let found = cycles(&g);
    let shown: Vec<String> = found.iter().map(|c| describe(&g, c)).collect();
    assert!(found.is_empty(), "{}", shown.join("\n"));
}

#[test]
fn the_checker_finds_a_cycle_and_ignores_test_code() {
    let sources: Sources = [
        ("a", "use crate::b::X;\nuse crate::d;\n"),
        ("b", "fn f() { crate::cmd::c::g() }\n"),
        ("cmd", "pub mod c;\n"),
        ("cmd::c", "use crate::{d, a as other};\n"),
        (
            "d",
            "#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n// crate::a\n",
        ),
        ("e", "use crate::testkit::*;\n"),
        ("testkit", "use crate::e;\n"),
    ]
    .into_iter()
    .map(|(m, s)| (m.to_string(), s.to_string()))
    .collect();
    let skip = test_only_modules(&sources, &["#[cfg(test)]\nmod testkit;\n"]);
    assert_eq!(skip, BTreeSet::from(["testkit".to_string()]));
    let g = graph(&sources, &skip);
    assert_eq!(
        cycles(&g),
        vec![vec!["a".to_string(), "b".into(), "cmd::c".into()]]
    );
    assert!(g["d"].is_empty(), "{:?}", g["d"]);
    assert!(describe(&g, &cycles(&g)[0]).contains("cmd::c -> a: use crate::{d, a as other};"));
    assert_eq!(
        crate_paths("use crate::{x::{y, z}, w};"),
        vec![vec!["x", "y"], vec!["x", "z"], vec!["w"]]
    );
}
