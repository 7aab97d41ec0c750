//! Parsing the human forms of durations and rates used on command lines: `1ms`, `250us`,
//! `100G`, `88.462M`. Decimal arithmetic throughout (no floating point), so `88.462M`
//! is exactly 88,462,000, and a value that is not a whole number of the base unit is
//! refused rather than rounded.

use crate::config::TraceError;

/// Parses a duration into nanoseconds: a decimal number and a unit, `ns`, `us` (or
/// `µs`), `ms`, `s` or `min`, e.g. `1ms`, `1000us`, `2.5s`. A bare `0` is accepted.
pub fn parse_duration_ns(text: &str) -> Result<u64, TraceError> {
    let t = text.trim();
    if t == "0" {
        return Ok(0);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(bad(
            "duration",
            text,
            "expected a non-negative decimal number and a unit, e.g. \"1ms\"",
        ));
    }
    let scale: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "min" => 60_000_000_000,
        "" => {
            return Err(bad(
                "duration",
                text,
                "add a unit: ns, us, ms, s or min (e.g. \"1ms\")",
            ))
        }
        other => {
            return Err(bad(
                "duration",
                text,
                &format!("unknown unit {other:?}: use ns, us, ms, s or min"),
            ))
        }
    };
    scaled("duration", text, num, scale, "nanoseconds")
}

/// Parses a count or a rate such as packets per second or flows per minute: a decimal
/// number with an optional `k`, `M` or `G` (powers of 1000), e.g. `250000`, `250k`,
/// `88.462M`, `14.88M`.
pub fn parse_count(what: &'static str, text: &str) -> Result<u64, TraceError> {
    let t = text.trim();
    let (num, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1_000),
        Some((i, 'M')) => (&t[..i], 1_000_000),
        Some((i, 'G')) => (&t[..i], 1_000_000_000),
        _ => (t, 1),
    };
    scaled(what, text, num, scale, "units")
}

/// Parses a bit rate into bits per second: a decimal number with an optional `k`, `M`,
/// `G` or `T` (powers of 1000, any case) and an optional `bps`, `b/s` or `bit/s`, e.g.
/// `100G`, `100Gbps`, `40gbit/s`, `2.5M`, `1000000000`.
pub fn parse_bit_rate(text: &str) -> Result<u64, TraceError> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let mut body = lower.as_str();
    for suffix in ["bit/s", "bps", "b/s", "bit"] {
        if let Some(rest) = body.strip_suffix(suffix) {
            body = rest.trim_end();
            break;
        }
    }
    let (num, scale) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1_000),
        Some('m') => (&body[..body.len() - 1], 1_000_000),
        Some('g') => (&body[..body.len() - 1], 1_000_000_000),
        Some('t') => (&body[..body.len() - 1], 1_000_000_000_000),
        _ => (body, 1),
    };
    scaled("bit rate", text, num, scale, "bits per second")
}

fn bad(what: &'static str, text: &str, reason: &str) -> TraceError {
    TraceError::BadValue {
        what,
        text: text.to_string(),
        reason: reason.to_string(),
    }
}

/// `num * scale` exactly, for a decimal `num` (digits with at most one point).
fn scaled(
    what: &'static str,
    text: &str,
    num: &str,
    scale: u64,
    base: &str,
) -> Result<u64, TraceError> {
    let num = num.trim();
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(bad(
            what,
            text,
            "expected a non-negative decimal number, e.g. \"1.5\"",
        ));
    }
    let too_big = || bad(what, text, "too large");
    let parse = |s: &str| -> Result<u128, TraceError> {
        if s.is_empty() {
            Ok(0)
        } else if s.len() > 30 {
            Err(too_big())
        } else {
            s.parse::<u128>().map_err(|_| too_big())
        }
    };
    let den = 10u128
        .checked_pow(u32::try_from(frac.len()).map_err(|_| too_big())?)
        .ok_or_else(too_big)?;
    let int_part = parse(int)?
        .checked_mul(u128::from(scale))
        .ok_or_else(too_big)?;
    let frac_num = parse(frac)?
        .checked_mul(u128::from(scale))
        .ok_or_else(too_big)?;
    if frac_num % den != 0 {
        return Err(bad(what, text, &format!("not a whole number of {base}")));
    }
    u64::try_from(int_part + frac_num / den).map_err(|_| too_big())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ns("1ms").unwrap(), 1_000_000);
        assert_eq!(parse_duration_ns(" 1000us ").unwrap(), 1_000_000);
        assert_eq!(parse_duration_ns("1000µs").unwrap(), 1_000_000);
        assert_eq!(parse_duration_ns("2.5s").unwrap(), 2_500_000_000);
        assert_eq!(parse_duration_ns("7ns").unwrap(), 7);
        assert_eq!(parse_duration_ns("1min").unwrap(), 60_000_000_000);
        assert_eq!(parse_duration_ns("0").unwrap(), 0);
        for (t, hint) in [
            ("10", "add a unit"),
            ("1h", "unknown unit"),
            ("1.5ns", "whole number"),
            ("ms", "decimal"),
            ("-1ms", "decimal"),
            ("1..2ms", "decimal"),
            ("99999999999999999999999s", "too large"),
        ] {
            let e = parse_duration_ns(t).unwrap_err().to_string();
            assert!(e.contains(hint), "{t}: {e}");
        }
    }

    #[test]
    fn counts_and_bit_rates() {
        assert_eq!(parse_count("churn", "88.462M").unwrap(), 88_462_000);
        assert_eq!(parse_count("churn", "250k").unwrap(), 250_000);
        assert_eq!(parse_count("churn", "15400").unwrap(), 15_400);
        assert_eq!(parse_count("rate", "1G").unwrap(), 1_000_000_000);
        assert!(parse_count("rate", "1.0005k").is_err());
        assert!(parse_count("rate", "").is_err());
        assert!(parse_count("rate", "abc").is_err());
        assert_eq!(parse_bit_rate("100G").unwrap(), 100_000_000_000);
        assert_eq!(parse_bit_rate("100Gbps").unwrap(), 100_000_000_000);
        assert_eq!(parse_bit_rate("40 gbit/s").unwrap(), 40_000_000_000);
        assert_eq!(parse_bit_rate("2.5M").unwrap(), 2_500_000);
        assert_eq!(parse_bit_rate("1000").unwrap(), 1_000);
        assert_eq!(parse_bit_rate("1T").unwrap(), 1_000_000_000_000);
        let e = parse_bit_rate("fast").unwrap_err().to_string();
        assert!(e.contains("bit rate") && e.contains("decimal"), "{e}");
    }
}
