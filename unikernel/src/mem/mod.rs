//! Memory: physical frames ([`frame`]), the heap ([`heap`]) and the kernel
//! stacks with their guard pages ([`stack`]).

pub mod frame;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod stack;
