//! `cargo xtask build`: build the kernel image and print its path.

use super::Ctx;
use crate::error::{EXIT_OK, Result};

pub fn run(ctx: &Ctx) -> Result<u8> {
    let image = ctx.kernel()?;
    println!("{}", image.display());
    Ok(EXIT_OK)
}
