//! Byte sizes as operators write them: a whole number of bytes (`262144`), or a whole
//! number with a binary unit (`256KiB`, `1MiB`, `2GiB`; `B` for bytes).
//!
//! Units are powers of 1024 and spelled as IEC 80000-13 spells them. `KB`, `MB` and `GB`
//! are refused rather than guessed (are they 10^6 or 2^20?). The integers a YAML reader
//! takes for a number of bytes still read (the profile's byte fields were plain integers
//! before they had units): `+` in front, `_` between digits, and `0x`, `0o`, `0b` numbers
//! (these without a unit). A profile is written back with plain integers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Units accepted after a number.
const UNITS: &[(&str, u64)] = &[
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
];

/// What a size may look like; used in the "allowed" part of error messages.
pub(crate) const SIZE_FORMS: &str =
    "a whole number of bytes, or one with a unit (B, KiB, MiB, GiB), like 262144, 256KiB or 1GiB";

/// Parses a size such as `262144`, `256KiB` or `1GiB`.
///
/// # Errors
///
/// A sentence saying why `text` is not a size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty size".to_owned());
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` is negative"));
    }
    let unsigned = s.strip_prefix('+').unwrap_or(s);
    let too_large = || format!("`{s}` is too large");
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        let Some(digits) = unsigned
            .strip_prefix(prefix)
            .or_else(|| unsigned.strip_prefix(&prefix.to_ascii_uppercase()))
        else {
            continue;
        };
        let digits = without_separators(digits)
            .filter(|d| d.chars().all(|c| c.is_digit(radix)))
            .ok_or_else(|| {
                format!("`{s}` is not a number in base {radix} (which takes no unit)")
            })?;
        return u64::from_str_radix(&digits, radix).map_err(|_| too_large());
    }
    let split = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(unsigned.len());
    let (number, unit) = unsigned.split_at(split);
    if number.is_empty() {
        return Err(format!("`{s}` does not start with a number"));
    }
    let Some(number) = without_separators(number) else {
        return Err(format!("`{s}` has a `_` that is not between two digits"));
    };
    if unit.starts_with('.') {
        return Err(format!("`{s}` is not a whole number"));
    }
    if number.len() > 1 && number.starts_with('0') {
        return Err(format!(
            "`{s}` starts with 0 (octal? write 0o for that, or leave the 0 out)"
        ));
    }
    if unit.starts_with(char::is_whitespace) {
        return Err(format!(
            "`{s}` has a space before its unit (write {number}{})",
            unit.trim_start()
        ));
    }
    let scale = match UNITS.iter().find(|(name, _)| *name == unit) {
        Some(&(_, scale)) => scale,
        None if unit.is_empty() => 1,
        None => {
            let decimal = matches!(
                unit.to_ascii_uppercase().as_str(),
                "K" | "KB" | "M" | "MB" | "G" | "GB"
            );
            return Err(if decimal {
                format!(
                    "`{unit}` is ambiguous (a power of 1000 or of 1024?): write KiB, MiB or GiB"
                )
            } else {
                format!("`{unit}` is not a unit")
            });
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(too_large)
}

/// `digits` without the `_` that may separate them (not first, not last, not two in a
/// row); `None` when empty or misplaced.
fn without_separators(digits: &str) -> Option<String> {
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__");
    ok.then(|| digits.replace('_', ""))
}

/// Formats a size the way a profile would write it: with the largest unit that divides it
/// (`1MiB`, `1536KiB`), or in bytes.
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_owned();
    }
    for &(unit, scale) in UNITS.iter().rev() {
        if scale > 1 && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    bytes.to_string()
}

/// A size as written: text that validation parses with [`parse_size`] and reports with
/// its field path (a plain integer is read as its text, as durations are); or, when a
/// profile is written, a number of bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawSize {
    /// A number of bytes (written).
    Bytes(u64),
    /// The scalar as read.
    Text(String),
}

impl RawSize {
    /// The number of bytes, or why the text is not a size.
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            RawSize::Bytes(n) => Ok(*n),
            RawSize::Text(t) => parse_size(t),
        }
    }
}

impl Serialize for RawSize {
    /// Bytes as a number (readers of `tandem check --json` see numbers, as before units
    /// existed); text as written.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            RawSize::Bytes(n) => s.serialize_u64(*n),
            RawSize::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawSize, D::Error> {
        String::deserialize(d).map(RawSize::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bytes_and_binary_units() {
        assert_eq!(parse_size("262144"), Ok(262_144));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("256KiB"), Ok(256 << 10));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size(" 2GiB "), Ok(2 << 30));
        assert_eq!(parse_size("0MiB"), Ok(0));
        // YAML's integer spellings, as when these fields were integers.
        assert_eq!(parse_size("+4096"), Ok(4096));
        assert_eq!(parse_size("1_048_576"), Ok(1 << 20));
        assert_eq!(parse_size("0x100000"), Ok(1 << 20));
        assert_eq!(parse_size("0X10_0000"), Ok(1 << 20));
        assert_eq!(parse_size("0o4000000"), Ok(1 << 20));
        assert_eq!(parse_size("0b1000"), Ok(8));
        assert_eq!(parse_size("1_024KiB"), Ok(1 << 20));
    }

    #[test]
    fn rejects_what_is_not_a_size() {
        for (bad, why) in [
            ("", "empty size"),
            ("-1", "`-1` is negative"),
            ("MiB", "`MiB` does not start with a number"),
            ("1.5MiB", "`1.5MiB` is not a whole number"),
            ("1 MiB", "`1 MiB` has a space before its unit (write 1MiB)"),
            ("1MB", "`MB` is ambiguous"),
            ("1k", "`k` is ambiguous"),
            ("1mib", "`mib` is not a unit"),
            ("1TiB", "`TiB` is not a unit"),
            ("1.5", "`1.5` is not a whole number"),
            ("true", "`true` does not start with a number"),
            ("0100", "`0100` starts with 0"),
            ("0x1MiB", "`0x1MiB` is not a number in base 16"),
            ("0x", "`0x` is not a number in base 16"),
            ("1__0", "`1__0` has a `_` that is not between two digits"),
            ("_1", "`_1` has a `_` that is not between two digits"),
            ("0x1_0000_0000_0000_0000", "is too large"),
            ("99999999999999999999", "is too large"),
            ("17179869184GiB", "is too large"),
        ] {
            match parse_size(bad) {
                Ok(n) => panic!("{bad:?} was accepted as {n}"),
                Err(e) => assert!(e.contains(why), "{bad:?}: {e}"),
            }
        }
    }

    #[test]
    fn formats_back() {
        for (n, text) in [
            (0, "0"),
            (100, "100"),
            (1024, "1KiB"),
            (1536 << 10, "1536KiB"),
            (1 << 20, "1MiB"),
            (256 << 20, "256MiB"),
            (3 << 30, "3GiB"),
        ] {
            assert_eq!(format_size(n), text);
            assert_eq!(parse_size(text), Ok(n));
        }
    }

    proptest::proptest! {
        #[test]
        fn round_trip(n: u64) {
            proptest::prop_assert_eq!(parse_size(&format_size(n)), Ok(n));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_size(&s);
        }
    }
}
