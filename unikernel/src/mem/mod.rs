//! Memory, and the fence around its `unsafe` (raw frames, the heap arena):
//! physical frames ([`frame`]), the heap ([`heap`]) and the kernel
//! stacks with their guard pages ([`stack`]).

#![allow(unsafe_code)]

pub mod frame;
#[cfg(target_os = "none")]
pub mod heap;
#[cfg(target_os = "none")]
pub mod stack;
