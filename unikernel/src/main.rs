//! The forkswap kernel (placeholder until the kernel lands).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("forkswap-kernel is built for x86_64-unknown-none: use `cargo xtask build`");
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
