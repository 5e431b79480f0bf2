//! `cargo xtask`: placeholder until the runner lands.
fn main() {
    eprintln!("forkswap runner: not built yet");
    std::process::exit(3);
}
