//! Finds virtio-mmio devices in a DSDT. With ACPI on, QEMU's microvm does not
//! append `virtio_mmio.device=` to the command line; it describes each
//! transport in the DSDT instead, as a device with `_HID "LNRO0005"` whose
//! `_CRS` holds a Memory32Fixed descriptor (the register window) and an
//! extended interrupt descriptor. Rather than interpret AML, this scans the
//! byte stream for exactly that shape, which is all QEMU emits.
//!
//! Pure logic, tested on the host.

use alloc::vec::Vec;

use crate::cmdline::VirtioMmio;

/// `Name (_HID, "LNRO0005")` as AML: NameOp, `_HID`, StringPrefix, string.
const HID: &[u8] = b"\x08_HID\x0dLNRO0005\x00";
/// Memory32Fixed large resource descriptor header (tag 0x86, length 9).
const MEMORY32_FIXED: &[u8] = &[0x86, 0x09, 0x00];
/// Extended interrupt descriptor tag.
const EXT_IRQ: u8 = 0x89;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The virtio-mmio windows described in `aml`, in DSDT order.
pub fn virtio_mmio_devices(aml: &[u8]) -> Vec<VirtioMmio> {
    let mut found = Vec::new();
    let mut rest = aml;
    while let Some(at) = find(rest, HID) {
        rest = &rest[at + HID.len()..];
        // This device's resources come before the next device's _HID.
        let scope = &rest[..find(rest, HID).unwrap_or(rest.len())];
        let Some(m) = find(scope, MEMORY32_FIXED) else {
            continue;
        };
        let (Some(base), Some(size)) = (u32_at(scope, m + 4), u32_at(scope, m + 8)) else {
            continue;
        };
        let after = &scope[m + 12..];
        // Extended interrupt: tag, length (2), flags, count, first irq (u32).
        let irq = after
            .iter()
            .position(|&b| b == EXT_IRQ)
            .and_then(|i| u32_at(after, i + 5))
            .unwrap_or(0);
        found.push(VirtioMmio {
            base: base as u64,
            size: size as u64,
            irq,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One device as QEMU's microvm DSDT encodes it (trimmed).
    fn device(uid: u8, base: u32, irq: u32) -> Vec<u8> {
        let mut d = b"\x5b\x82\x30VR00".to_vec();
        d.extend_from_slice(HID);
        d.extend_from_slice(&[0x08, b'_', b'U', b'I', b'D', 0x0a, uid]);
        d.extend_from_slice(b"\x08_CRS\x11\x1a\x0a\x17");
        d.extend_from_slice(MEMORY32_FIXED);
        d.push(0x01);
        d.extend_from_slice(&base.to_le_bytes());
        d.extend_from_slice(&0x200u32.to_le_bytes());
        d.extend_from_slice(&[EXT_IRQ, 0x06, 0x00, 0x01, 0x01]);
        d.extend_from_slice(&irq.to_le_bytes());
        d.extend_from_slice(&[0x79, 0x00]);
        d
    }

    #[test]
    fn finds_each_device() {
        let mut aml = b"\x10\x45\x05\\_SB_".to_vec();
        aml.extend(device(0, 0xfeb0_0000, 16));
        aml.extend(device(1, 0xfeb0_0200, 17));
        assert_eq!(
            virtio_mmio_devices(&aml),
            [
                VirtioMmio {
                    base: 0xfeb0_0000,
                    size: 0x200,
                    irq: 16
                },
                VirtioMmio {
                    base: 0xfeb0_0200,
                    size: 0x200,
                    irq: 17
                },
            ]
        );
    }

    #[test]
    fn nothing_without_devices() {
        assert!(virtio_mmio_devices(b"\x10\x45\x05\\_SB_ no devices here").is_empty());
        // A device whose resources are cut off is skipped.
        let mut aml = device(0, 0xfeb0_0000, 16);
        aml.truncate(HID.len() + 20);
        assert!(virtio_mmio_devices(&aml).is_empty());
    }
}
