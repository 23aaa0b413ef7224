//! Typed parsers for flag values: sizes (`64MiB`), durations (`500ms`,
//! `2m`), points in time (`1h` ago or RFC 3339) and `NAME=VALUE` pairs.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// A size, as `bytesize` reads it: a number of bytes with an optional
/// unit, binary (`KiB`, `MiB`, `GiB`) or decimal (`KB`/`K`, `MB`/`M`, `GB`/`G`).
///
/// # Errors
/// A message saying what is accepted.
pub fn bytes(s: &str) -> Result<u64, String> {
    let n = s
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("{s:?} is not a size; use e.g. 65536, 512KiB, 64MiB, 1GB"))?;
    // bytesize saturates what overflows.
    if n >= 1 << 63 {
        return Err(format!("{s:?} is too large"));
    }
    Ok(n)
}

/// A duration, as `humantime` reads it (`500ms`, `30s`, `5m`, `1h 30m`,
/// `7d`); a bare number is seconds.
///
/// # Errors
/// A message saying what is accepted.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return t.parse().map(Duration::from_secs).map_err(|_| format!("{s:?} is too long"));
    }
    humantime::parse_duration(t).map_err(|_| format!("{s:?} is not a duration; use e.g. 500ms, 30s, 5m, 1h, 7d"))
}

/// A point in time: RFC 3339, or a duration meaning that long ago (`1h`).
///
/// # Errors
/// A message saying what is accepted.
pub fn since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d =
        duration(s).map_err(|_| format!("{s:?} is neither a time (RFC 3339) nor a duration ago (e.g. 15m, 1h, 7d)"))?;
    let d = chrono::Duration::from_std(d).map_err(|_| format!("{s:?} is too long ago"))?;
    now.checked_sub_signed(d).ok_or_else(|| format!("{s:?} is too long ago"))
}

/// `NAME=VALUE` (the value may contain `=`).
///
/// # Errors
/// When there is no `=`.
pub fn pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes("65536"), Ok(65536));
        assert_eq!(bytes("64MiB"), Ok(64 << 20));
        assert_eq!(bytes("512KiB"), Ok(512 << 10));
        assert_eq!(bytes("1 GiB"), Ok(1 << 30));
        assert_eq!(bytes("2MB"), Ok(2_000_000), "decimal units are decimal");
        assert!(bytes("lots").is_err());
        assert!(bytes("3furlongs").is_err());
        assert!(bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(duration("soon").is_err());
        assert!(duration("3 furlongs").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn points_in_time() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(since("1h", now).unwrap().to_rfc3339(), "2026-11-30T11:00:00+00:00");
        assert_eq!(since("2026-11-01T00:00:00+01:00", now).unwrap().to_rfc3339(), "2026-10-31T23:00:00+00:00");
        assert!(since("yesterday", now).is_err());
    }

    #[test]
    fn pairs() {
        assert_eq!(pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(pair("A="), Ok(("A".into(), String::new())));
        assert!(pair("=x").is_err());
        assert!(pair("A").is_err());
    }
}
