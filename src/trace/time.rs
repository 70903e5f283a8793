//! Timestamps: RFC 3339 strings (any offset) and epoch numbers, to UTC nanoseconds.
//!
//! Epoch numbers carry no unit, so the unit is read from the magnitude (absolute value):
//! below 1e11 seconds (up to the year 5138), below 1e14 milliseconds, below 1e17
//! microseconds, otherwise nanoseconds. Present-day instants fall far from every threshold.

use std::cell::Cell;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;

use super::Nanos;

const SECONDS_BELOW: f64 = 1e11;
const MILLIS_BELOW: f64 = 1e14;
const MICROS_BELOW: f64 = 1e17;

/// Parse a JSON timestamp: an RFC 3339 string, an epoch number, or a string holding one.
/// The error is the reason, without file, line or field.
pub fn parse_ts_value(v: &Value) -> Result<Nanos, String> {
    match v {
        Value::String(s) => parse_ts_str(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                epoch_int(i).ok_or_else(|| format!("timestamp {i} is out of range"))
            } else if let Some(f) = n.as_f64() {
                // The number's shortest text gives back what was written whenever that fits a
                // float's 17 digits (a seconds epoch to 0.1 µs), read exactly from there.
                let text = n.to_string();
                match epoch_decimal(&text) {
                    Some(ns) => ns,
                    None => epoch_float(f),
                }
                .ok_or_else(|| {
                    // An integer beyond 64 bits was read as a float, whose digits in full are
                    // not the input's: it is given rounded.
                    if text.contains(['e', 'E']) {
                        format!("timestamp about {f:.3e} is out of range")
                    } else {
                        format!("timestamp {text} is out of range")
                    }
                })
            } else {
                Err(format!("timestamp {n} is out of range"))
            }
        }
        other => Err(format!(
            "expected an RFC 3339 string or an epoch number, found {}",
            kind_of(other)
        )),
    }
}

/// Parse an RFC 3339 string (any offset) or a decimal epoch number written as text.
pub fn parse_ts_str(s: &str) -> Result<Nanos, String> {
    match fast_rfc3339(s) {
        Some(ns) => Ok(ns),
        None => general_ts_str(s),
    }
}

/// [`parse_ts_str`] for the strings [`fast_rfc3339`] leaves out (and, in tests, for all).
fn general_ts_str(s: &str) -> Result<Nanos, String> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return dt
            .with_timezone(&Utc)
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("timestamp {s:?} is out of range"));
    }
    // ISO 8601 offsets RFC 3339 does not allow: `+0200` (Python's and Java's `%z`), `+02`.
    let iso = ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"];
    if let Some(dt) = (iso.iter()).find_map(|f| DateTime::parse_from_str(t, f).ok()) {
        return dt
            .with_timezone(&Utc)
            .timestamp_nanos_opt()
            .ok_or_else(|| format!("timestamp {s:?} is out of range"));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        if let Ok(i) = t.parse::<i64>() {
            return epoch_int(i).ok_or_else(|| format!("timestamp {s:?} is out of range"));
        }
    }
    if let Some(ns) = epoch_decimal(t) {
        return ns.ok_or_else(|| format!("timestamp {s:?} is out of range"));
    }
    if let Ok(f) = t.parse::<f64>() {
        if f.is_finite()
            && t.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return epoch_float(f).ok_or_else(|| format!("timestamp {s:?} is out of range"));
        }
    }
    if let Some(naive) = naive_datetime(t) {
        let Some(offset) = ASSUME_TZ.get() else {
            return Err(format!(
                "timestamp {s:?} has no UTC offset; say which one it is in with --assume-tz \
                 (e.g. --assume-tz UTC or --assume-tz +02:00)"
            ));
        };
        return naive
            .and_local_timezone(*offset)
            .single()
            .and_then(|dt| dt.with_timezone(&Utc).timestamp_nanos_opt())
            .ok_or_else(|| format!("timestamp {s:?} is out of range"));
    }
    Err(format!("cannot parse {s:?} as a timestamp"))
}

/// The offset of timestamps written without one (`--assume-tz`); set once per process.
static ASSUME_TZ: std::sync::OnceLock<FixedOffset> = std::sync::OnceLock::new();

/// Read timestamps without a UTC offset as being at `offset` (`--assume-tz`). The first call
/// wins: the setting belongs to the process, like a locale.
pub fn set_assume_tz(offset: FixedOffset) {
    let _ = ASSUME_TZ.set(offset);
}

/// `UTC`, `Z`, or an offset `+02:00` / `-0530` / `+02`.
pub fn parse_offset(s: &str) -> Result<FixedOffset, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("utc") || t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("gmt")
    {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let bad = || format!("`{s}` is not an offset: give UTC or ±HH:MM (e.g. +02:00)");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return Err(bad());
    }
    let hours: i32 = digits[..2].parse().map_err(|_| bad())?;
    let minutes: i32 = if digits.len() == 4 {
        digits[2..].parse().map_err(|_| bad())?
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return Err(bad());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(bad)
}

/// `2026-08-01T09:00:00`, `2026-08-01 09:00:00.250`: a date and time without an offset.
fn naive_datetime(t: &str) -> Option<chrono::NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
}

/// A decimal epoch number (`-?digits.digits`), exactly: the fraction's digits are not passed
/// through a float (which would move a nanosecond-precise instant by tens of nanoseconds).
/// `None` when `t` is not of that form; `Some(None)` when it is out of range.
fn epoch_decimal(t: &str) -> Option<Option<Nanos>> {
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, frac) = digits.split_once('.')?;
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || whole.len() > 30 {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    // The unit by the magnitude, as for every epoch number (the thresholds are whole numbers,
    // so the whole part decides).
    let a = whole as f64;
    let places: usize = if a < SECONDS_BELOW {
        9
    } else if a < MILLIS_BELOW {
        6
    } else if a < MICROS_BELOW {
        3
    } else {
        0
    };
    let mut ns = whole * 10i128.pow(places as u32);
    let kept = &frac.as_bytes()[..frac.len().min(places)];
    let mut part: i128 = 0;
    for &d in kept {
        part = part * 10 + i128::from(d - b'0');
    }
    part *= 10i128.pow((places - kept.len()) as u32);
    // Digits past the nanosecond round to the nearest.
    if frac.as_bytes().get(places).is_some_and(|&d| d >= b'5') {
        part += 1;
    }
    ns += part;
    if negative {
        ns = -ns;
    }
    Some(i64::try_from(ns).ok())
}

fn epoch_int(i: i64) -> Option<Nanos> {
    let a = (i as f64).abs();
    let scale: i128 = if a < SECONDS_BELOW {
        1_000_000_000
    } else if a < MILLIS_BELOW {
        1_000_000
    } else if a < MICROS_BELOW {
        1_000
    } else {
        1
    };
    i64::try_from(i as i128 * scale).ok()
}

fn epoch_float(f: f64) -> Option<Nanos> {
    let a = f.abs();
    let scale = if a < SECONDS_BELOW {
        1e9
    } else if a < MILLIS_BELOW {
        1e6
    } else if a < MICROS_BELOW {
        1e3
    } else {
        1.0
    };
    // Whole and fractional parts apart: `f * 1e9` alone would lose the fraction's digits.
    let whole = f.trunc();
    let ns = whole * scale + ((f - whole) * scale).round();
    if ns.is_finite() && ns >= i64::MIN as f64 && ns <= i64::MAX as f64 {
        Some((whole as i64).checked_mul(scale as i64)? + ((f - whole) * scale).round() as i64)
    } else {
        None
    }
}

/// RFC 3339 in UTC with the shortest exact fraction (none, ms, µs or ns).
pub fn format_ts(ts: Nanos) -> String {
    let mut out = String::with_capacity(30);
    format_ts_into(&mut out, ts);
    out
}

/// [`format_ts`] appended to `out` (per-call reports reuse one buffer), without chrono: the
/// civil date of the day number (H. Hinnant's `civil_from_days`), then the clock and the
/// fraction, as chrono writes them (a test holds the two together).
pub fn format_ts_into(out: &mut String, ts: Nanos) {
    let secs = ts.div_euclid(1_000_000_000);
    let nanos = ts.rem_euclid(1_000_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut buf = [0u8; 32];
    let mut len = 0;
    let mut put = |mut n: i64, width: usize, after: u8| {
        // Right to left, dividing by a constant ten (a multiplication once compiled).
        for digit in buf[len..len + width].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        len += width;
        if after != 0 {
            buf[len] = after;
            len += 1;
        }
    };
    // Nanoseconds since 1970 in an i64 stay within the years 1677 to 2262.
    put(year, 4, b'-');
    put(month, 2, b'-');
    put(day, 2, b'T');
    put(sod / 3600, 2, b':');
    put(sod / 60 % 60, 2, b':');
    put(sod % 60, 2, if nanos != 0 { b'.' } else { b'Z' });
    if nanos != 0 {
        if nanos % 1_000_000 == 0 {
            put(nanos / 1_000_000, 3, b'Z');
        } else if nanos % 1_000 == 0 {
            put(nanos / 1_000, 6, b'Z');
        } else {
            put(nanos, 9, b'Z');
        }
    }
    // Digits and separators: ASCII.
    out.push_str(std::str::from_utf8(&buf[..len]).unwrap_or_default());
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the shape mcpsim and most gateways write, parsed without
/// chrono. Anything else (offsets, lower-case separators, leap seconds…) returns `None` and is
/// left to the general parser, so results never differ from it.
///
/// A trace's calls come minutes apart at most, mostly seconds: each thread keeps the last
/// minute it read (the first 16 bytes and their instant), and a timestamp in the same minute
/// reads only its seconds and fraction.
pub(crate) fn fast_rfc3339(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let key: [u8; 16] = b[..16].try_into().ok()?;
    let minute = match LAST_MINUTE.get() {
        (last, ns) if last == key => ns,
        _ => {
            let ns = minute_of(b)?;
            LAST_MINUTE.set((key, ns));
            ns
        }
    };
    let second = digits(&b[17..19])?;
    if second > 59 {
        return None;
    }
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', frac @ ..] if (1..=9).contains(&frac.len()) => {
            digits(frac)? * FRACTION_SCALE[frac.len()]
        }
        _ => return None,
    };
    minute.checked_add(i64::from(second) * 1_000_000_000 + i64::from(nanos))
}

/// What a fraction of `n` digits is multiplied by to give nanoseconds (`10^(9-n)`), looked up
/// rather than raised to a power on every timestamp.
const FRACTION_SCALE: [u32; 10] = [
    1_000_000_000,
    100_000_000,
    10_000_000,
    1_000_000,
    100_000,
    10_000,
    1_000,
    100,
    10,
    1,
];

thread_local! {
    /// The minute [`fast_rfc3339`] read last on this thread: its text (`YYYY-MM-DDTHH:MM`) and
    /// its instant. No timestamp starts with sixteen zero bytes.
    static LAST_MINUTE: Cell<([u8; 16], Nanos)> = const { Cell::new(([0; 16], 0)) };
}

/// The instant of the minute a timestamp of [`fast_rfc3339`]'s shape starts with; `None` when
/// the date or time is not one, or the minute is out of range.
fn minute_of(b: &[u8]) -> Option<Nanos> {
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute) = (digits(&b[11..13])?, digits(&b[14..16])?);
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day == 0 || day > days_in_month[month as usize - 1] {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    (days * 86_400 + i64::from(hour * 3600 + minute * 60)).checked_mul(1_000_000_000)
}

/// ASCII decimal digits as a number; `None` for any other byte. At most nine digits.
#[inline]
fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// (year, month, day) → days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::SecondsFormat;
    use proptest::prelude::*;

    proptest! {
        /// The hand-written formatter writes what chrono writes, over the whole range.
        #[test]
        fn timestamps_format_as_chrono_formats_them(
            ts in prop_oneof![
                any::<i64>(),
                (0i64..4_000_000_000).prop_map(|s| s * 1_000_000_000),
                (0i64..4_000_000_000_000).prop_map(|ms| ms * 1_000_000),
                (-4_000_000_000_000_000i64..4_000_000_000_000_000).prop_map(|us| us * 1_000),
            ],
        ) {
            let chrono = DateTime::<Utc>::from_timestamp_nanos(ts)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true);
            prop_assert_eq!(format_ts(ts), chrono);
        }

        /// The fast parser reads what it reads as chrono does, and every timestamp mcpsim
        /// writes reads back to itself.
        #[test]
        fn the_fast_parser_agrees_with_the_general_one(
            ts in prop_oneof![
                any::<i64>(),
                (-4_000_000_000_000_000i64..4_000_000_000_000_000).prop_map(|us| us * 1_000),
            ],
            digits in 0usize..=9,
        ) {
            let written = format_ts(ts);
            prop_assert_eq!(parse_ts_str(&written), Ok(ts));
            // The instant cut to `digits` fraction digits, trailing zeros kept.
            let seconds = DateTime::<Utc>::from_timestamp_nanos(ts).format("%Y-%m-%dT%H:%M:%S");
            let fraction = format!("{:09}", ts.rem_euclid(1_000_000_000));
            let cut = match digits {
                0 => format!("{seconds}Z"),
                n => format!("{seconds}.{}Z", &fraction[..n]),
            };
            let fast = fast_rfc3339(&cut);
            if let Some(ns) = fast {
                prop_assert_eq!(Ok(ns), general_ts_str(&cut));
            }
            prop_assert_eq!(parse_ts_str(&cut), general_ts_str(&cut));
        }

        /// Read one after another, as a trace's lines are, timestamps in the same minute as the
        /// one before (whose minute the fast parser keeps) read as each does alone; so do
        /// damaged ones in a kept minute.
        #[test]
        fn timestamps_in_a_kept_minute_read_as_they_do_alone(
            start in -2_000_000_000_000i64..8_000_000_000_000,
            steps in proptest::collection::vec((0i64..150_000, 0usize..=9, 0u8..4), 1..40),
        ) {
            let mut ms = start;
            for (step, digits, damage) in steps {
                ms += step;
                let ts = DateTime::<Utc>::from_timestamp_millis(ms).unwrap();
                let seconds = ts.format("%Y-%m-%dT%H:%M:%S").to_string();
                let fraction = format!("{:03}000000", ms.rem_euclid(1000));
                let mut text = match digits {
                    0 => format!("{seconds}Z"),
                    n => format!("{seconds}.{}Z", &fraction[..n]),
                };
                match damage {
                    1 => text.replace_range(17..19, "60"),
                    2 => text.replace_range(18..19, "x"),
                    _ => {}
                }
                if let Some(ns) = fast_rfc3339(&text) {
                    prop_assert_eq!(Ok(ns), general_ts_str(&text), "{}", text);
                }
                prop_assert_eq!(parse_ts_str(&text), general_ts_str(&text), "{}", text);
                if damage == 0 && digits >= 3 {
                    prop_assert_eq!(parse_ts_str(&text), Ok(ms * 1_000_000));
                }
            }
        }
    }

    #[test]
    fn the_ends_of_the_range_format_as_chrono_formats_them() {
        for ts in [
            i64::MIN,
            i64::MAX,
            0,
            -1,
            1,
            951_782_400_000_000_000,
            -62_135_596_800,
        ] {
            let chrono = DateTime::<Utc>::from_timestamp_nanos(ts)
                .to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(format_ts(ts), chrono, "{ts}");
        }
    }

    #[test]
    fn fractional_epoch_seconds_are_exact() {
        // Through a float these moved by about 70 ns.
        assert_eq!(
            parse_ts_str("1785578400.123456789"),
            Ok(1_785_578_400_123_456_789)
        );
        assert_eq!(parse_ts_str("1785578400.5"), Ok(1_785_578_400_500_000_000));
        assert_eq!(parse_ts_str("-1.25"), Ok(-1_250_000_000));
        assert_eq!(
            parse_ts_str("1785578400123.4567"),
            Ok(1_785_578_400_123_456_700)
        );
        assert_eq!(
            parse_ts_str("1785578400.1234567891"),
            Ok(1_785_578_400_123_456_789)
        );
        assert_eq!(
            parse_ts_str("1785578400.1234567895"),
            Ok(1_785_578_400_123_456_790)
        );
        let v: Value = serde_json::from_str("1785578400.1234567").unwrap();
        assert_eq!(parse_ts_value(&v), Ok(1_785_578_400_123_456_700));
    }

    #[test]
    fn iso_8601_offsets_without_a_colon_or_minutes_read() {
        let utc = parse_ts_str("2026-08-01T08:00:00Z").unwrap();
        for t in [
            "2026-08-01T10:00:00+0200",
            "2026-08-01T10:00:00+02",
            "2026-08-01 10:00:00.000+0200",
            "2026-08-01T07:30:00-0030",
            "2026-08-01T08:00:00+00",
        ] {
            assert_eq!(parse_ts_str(t), Ok(utc), "{t}");
        }
        for bad in [
            "2026-08-01T10:00:00+2",
            "2026-08-01T10:00:00+02000",
            "2026-08-01T10:00+02",
        ] {
            assert!(parse_ts_str(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rfc3339_any_offset_is_utc() {
        let a = parse_ts_str("2026-08-01T10:00:00.120Z").unwrap();
        let b = parse_ts_str("2026-08-01T12:00:00.120+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, 1_785_578_400_120_000_000);
    }

    #[test]
    fn epoch_units_by_magnitude() {
        let ns = 1_785_578_400_000_000_000i64;
        for v in [
            serde_json::json!(1_785_578_400i64),
            serde_json::json!(1_785_578_400_000i64),
            serde_json::json!(1_785_578_400_000_000i64),
            serde_json::json!(ns),
            serde_json::json!(1_785_578_400.0),
            serde_json::json!("1785578400"),
        ] {
            assert_eq!(parse_ts_value(&v), Ok(ns), "{v}");
        }
        assert_eq!(
            parse_ts_value(&serde_json::json!(1_785_578_400.25)),
            Ok(ns + 250_000_000)
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_text() {
        assert_eq!(
            parse_ts_str("yesterday"),
            Err("cannot parse \"yesterday\" as a timestamp".to_string())
        );
        assert!(parse_ts_value(&serde_json::json!(true)).is_err());
        // An integer beyond 64 bits is read as a float: given rounded, not with digits the
        // input does not hold (1785578400123456600000).
        let huge: Value = serde_json::from_str("1785578400123456789123").expect("JSON");
        assert_eq!(
            parse_ts_value(&huge),
            Err("timestamp about 1.786e21 is out of range".to_string())
        );
        let far: Value = serde_json::from_str("99999999999.5").expect("JSON");
        assert_eq!(
            parse_ts_value(&far),
            Err("timestamp 99999999999.5 is out of range".to_string())
        );
    }

    #[test]
    fn format_is_shortest_exact() {
        assert_eq!(
            format_ts(1_785_578_400_120_000_000),
            "2026-08-01T10:00:00.120Z"
        );
        assert_eq!(
            format_ts(1_785_578_400_000_000_001),
            "2026-08-01T10:00:00.000000001Z"
        );
        assert_eq!(format_ts(1_785_578_400_000_000_000), "2026-08-01T10:00:00Z");
    }

    #[test]
    fn fast_timestamps_agree_with_the_general_parser() {
        for s in [
            "2026-08-01T10:00:00.120Z",
            "2026-08-01T10:00:00Z",
            "2026-08-01T10:00:00.000000001Z",
            "2024-02-29T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T23:59:59.5Z",
            "2000-03-01T00:00:00.1Z",
        ] {
            assert_eq!(fast_rfc3339(s), general_ts_str(s).ok(), "{s}");
            assert_eq!(parse_ts_str(s), general_ts_str(s), "{s}");
        }
    }

    #[test]
    fn unusual_timestamps_are_left_to_the_general_parser() {
        for s in [
            "2026-08-01T10:00:00+02:00",
            "2026-08-01t10:00:00z",
            "2025-02-29T00:00:00Z",
            "2026-08-01T10:00:60Z",
            "2026-08-01T10:00:00.Z",
            "2026-08-01T10:00:00.1234567890Z",
            " 2026-08-01T10:00:00Z",
        ] {
            assert_eq!(fast_rfc3339(s), None, "{s}");
            assert_eq!(parse_ts_str(s), general_ts_str(s), "{s}");
        }
    }
}
