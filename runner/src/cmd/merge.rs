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
    json::write_atomic(&a.json, &merged)?;
    let text = format!(
        "merged {} shard report(s): {} boots of {} variant(s)\n{}\n{}",
        inputs.len(),
        merged.boots.len(),
        merged.variants.len(),
        super::compare::table(&merged.variants),
        super::compare::notes(&merged.variants, &merged.boots)
    );
    let printed = crate::out::stdout(&text);
    crate::note!("JSON written to {}", a.json.display());
    Ok(crate::out::exit_status(printed, EXIT_OK))
}
