//! `cargo xtask merge`: the shards' `compare --json` reports in, the whole
//! plan's report out ([`crate::merge`]), with its table printed as
//! `compare` prints it. Exit status: 0 merged, 2 the inputs are not the
//! shards of one plan (one line says why), 3 the output cannot be written.

use super::Ctx;
use crate::cli::MergeArgs;
use crate::error::{EXIT_OK, Error, Result};
use crate::json;

pub fn run(_ctx: &Ctx, a: &MergeArgs) -> Result<u8> {
    json::ensure_writable("--json", &a.json)?;
    let mut inputs = Vec::new();
    for p in &a.reports {
        let r = json::read_compare(p).map_err(|e| Error::usage(format!("{e:#}")))?;
        inputs.push((p.display().to_string(), r));
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let merged = crate::merge::merge(&inputs, command).map_err(Error::usage)?;
    println!(
        "merged {} shard report(s): {} boots of {} variant(s)",
        inputs.len(),
        merged.boots.len(),
        merged.variants.len()
    );
    println!("{}", super::compare::table(&merged.variants));
    print!("{}", super::compare::notes(&merged.variants, &merged.boots));
    json::write_atomic(&a.json, &merged)?;
    eprintln!("JSON written to {}", a.json.display());
    Ok(EXIT_OK)
}
