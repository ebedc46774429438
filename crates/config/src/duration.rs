//! Durations written with units, as operators write them: `10ms`, `1.5s`, `100us`, `2m`,
//! `1m30s`.
//!
//! A profile never takes a bare number as a duration (is `10` seconds or milliseconds?),
//! with one exception: `0`, which needs no unit and means "zero" (for the fields where
//! zero means "off").

use std::time::Duration;

/// Units accepted after a number, longest spelling first so that `ms` is not read as `m`.
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// What a duration may look like; used in the "allowed" part of error messages.
pub(crate) const DURATION_FORMS: &str =
    "a number with a unit (ns, us, ms, s, m, h), like 100us, 10ms, 1.5s, 2m or 1m30s";

/// Parses a duration such as `10ms`, `1.5s` or `1m30s`; `0` alone is zero.
///
/// Fractions are allowed (`1.5s`) and are truncated to whole nanoseconds. Returns a short
/// explanation of what is wrong on failure.
///
/// # Errors
///
/// A sentence saying why `text` is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if s.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` is negative"));
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(num_len);
        if number.is_empty() {
            return Err(format!("`{s}` does not start with a number"));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("`{s}` has no unit"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("`{unit}` is not a unit"));
        };
        total = total
            .checked_add(
                scale_number(number, scale).ok_or_else(|| format!("`{s}` is not a number"))?,
            )
            .ok_or_else(|| format!("`{s}` is too long"))?;
        rest = next;
    }
    let nanos = u64::try_from(total).map_err(|_| format!("`{s}` is too long"))?;
    Ok(Duration::from_nanos(nanos))
}

/// `number` (digits, at most one `.`) times `scale` nanoseconds, truncated; `None` when the
/// number is malformed or overflows.
fn scale_number(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return None;
    }
    let int_value: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int_value.checked_mul(scale)?;
    if !frac.is_empty() {
        // At most 18 fractional digits matter for nanoseconds of an hour.
        let digits = &frac[..frac.len().min(18)];
        let frac_value: u128 = digits.parse().ok()?;
        let denom = 10u128.checked_pow(u32::try_from(digits.len()).ok()?)?;
        value = value.checked_add(frac_value.checked_mul(scale)? / denom)?;
    }
    Some(value)
}

/// Formats a duration the way a profile would write it (`10ms`, `1.5s`, `300s`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0".to_owned();
    }
    for (unit, scale) in [("s", 1_000_000_000u128), ("ms", 1_000_000), ("us", 1_000)] {
        if nanos >= scale {
            return if nanos.is_multiple_of(scale) {
                format!("{}{unit}", nanos / scale)
            } else {
                let text = format!("{:.3}", nanos as f64 / scale as f64);
                let text = text.trim_end_matches('0').trim_end_matches('.');
                format!("{text}{unit}")
            };
        }
    }
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_spellings() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10ms"), Ok(ms(10)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "10",
            "1.5",
            "ms",
            "10 ms",
            "-1s",
            "1..5s",
            "5x",
            "1.s.",
            "s10",
            "10sec",
            "99999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format_duration(Duration::from_millis(10)), "10ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(300)), "300s");
        assert_eq!(format_duration(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_duration(Duration::ZERO), "0");
    }

    proptest::proptest! {
        #[test]
        fn whole_milliseconds_round_trip(n in 0u64..10_000_000) {
            let d = Duration::from_millis(n);
            proptest::prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
