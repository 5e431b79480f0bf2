//! Seeds of stress runs: parsed from the command line (decimal or `0x` hex,
//! like the kernel's `seed=`), printed as `0x` hex, and drawn at random when
//! none is given (from the standard library's per-process random hasher
//! keys and the clock: no extra dependency, no `unsafe`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// Parses a seed: `1234` or `0x4d2` (a `_` between digits is allowed).
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let (digits, radix) = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (t.as_str(), 10),
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return Err(format!("'{s}' is not a seed (a u64, decimal or 0x-hex)"));
    }
    u64::from_str_radix(digits, radix)
        .map_err(|e| format!("'{s}' is not a seed (a u64, decimal or 0x-hex): {e}"))
}

/// A seed as printed everywhere: `0x` and lowercase hex.
pub fn show(seed: u64) -> String {
    format!("{seed:#x}")
}

/// A fresh random seed.
pub fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(now);
    h.write_u32(std::process::id());
    h.finish()
}

/// Serde helpers: a seed as a `"0x..."` string in JSON (a u64 does not
/// survive JavaScript's doubles); decimal numbers are accepted on input.
pub mod serde_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(seed: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::show(*seed))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Num(u64),
            Str(String),
        }
        match Either::deserialize(d)? {
            Either::Num(n) => Ok(n),
            Either::Str(s) => super::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_hex() {
        assert_eq!(parse("1234"), Ok(1234));
        assert_eq!(parse("0x4d2"), Ok(1234));
        assert_eq!(parse("0XFFFF_FFFF_FFFF_FFFF"), Ok(u64::MAX));
        assert_eq!(parse(&show(0xdead_beef)), Ok(0xdead_beef));
        for bad in ["", "0x", "-1", "+1", "12a", "0xg", "18446744073709551616"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn random_seeds_differ() {
        assert_ne!(random(), random());
    }
}
