//! Helpers for the unit tests next to the code: a small host machine.

use crate::fork::Region;
use crate::host::HostPlatform;
use crate::variant::Variant;
use crate::vm::{Td, Vm, VmConfig};

pub type TestVm = Vm<HostPlatform>;

/// A machine with `frames` frames, one pbuf, 4 image slots, no delays.
pub fn vm(variant: Variant, frames: usize) -> TestVm {
    Vm::new(
        HostPlatform::new(512),
        VmConfig {
            frames,
            ..VmConfig::small(variant, 1, 1)
        },
    )
}

pub fn td() -> Td {
    Td::new(0, 1)
}

/// An image with one region of `pages` pages at 0x100, clipped at `clips`,
/// every page stored once (version 1).
pub fn image(vm: &TestVm, td: &mut Td, pages: u64, clips: &[u64]) -> u32 {
    let id = vm
        .create_image(
            td,
            &[Region {
                start: 0x100,
                pages,
                clips: clips.to_vec(),
            }],
        )
        .unwrap()
        .unwrap();
    for i in 0..pages {
        assert!(vm.store(td, id, 0x100 + i).unwrap());
    }
    id
}

/// Resident pindexes and swap-block pindexes of the object mapping `vpn`.
pub fn layout(
    vm: &TestVm,
    td: &Td,
    img: u32,
    vpn: u64,
) -> (alloc::vec::Vec<u64>, alloc::vec::Vec<u64>) {
    let (o, _) = vm.entry_object(td, img, vpn).unwrap().unwrap();
    vm.peek_object(td, &o, |g| {
        (
            g.pages.keys().copied().collect(),
            g.swblk.keys().copied().collect(),
        )
    })
    .unwrap()
}
