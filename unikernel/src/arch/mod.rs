//! x86_64 specifics: the PVH entry ([`entry`]), descriptor tables ([`gdt`],
//! [`idt`]), memory types ([`mtrr`]), page tables ([`paging`]) and the AP
//! trampoline ([`trampoline`]).

pub mod entry;
pub mod gdt;
pub mod idt;
pub mod mtrr;
pub mod paging;
pub mod trampoline;
