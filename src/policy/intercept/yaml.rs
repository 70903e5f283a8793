//! YAML scalars as the gateway's YAML library (`gopkg.in/yaml.v3`) resolves them.
//!
//! The YAML text is parsed without resolving scalars; each plain scalar is then resolved
//! by yaml.v3's rules rather than YAML 1.2's core schema: `017` is octal, `08` a float,
//! underscores are dropped from numbers (`1_000`, `0x_1F`), `0b101` is binary, `.inf`/`.nan`
//! are floats, `True`/`FALSE` booleans but `yes`/`on` strings, an integer beyond int64 an
//! unsigned integer and beyond that a float, a float out of range a string, an unquoted date a
//! timestamp, and `!!binary` text is decoded.

use saphyr::ScalarStyle;
use saphyr::{MarkedYaml, ScanError, Tag, YamlLoader};
use saphyr_parser::Parser;

/// A resolved scalar, typed as yaml.v3 hands it to an `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum GoScalar {
    /// `~`, `null`, empty.
    Null,
    /// `true`, `False`…
    Bool(bool),
    /// A Go `int`.
    Int(i64),
    /// A Go `uint64` (integers above the int64 range).
    Uint(u64),
    /// A Go `float64`.
    Float(f64),
    /// A Go `string` (quoted or block scalars, `!!str`, unresolvable plain text, `!!binary`
    /// decoded).
    Str(String),
    /// A `time.Time`, held as Go prints it (`2024-01-01 00:00:00 +0000 UTC`).
    Time(String),
}

/// Parse `src` into its documents with every scalar left unresolved.
pub(super) fn load(src: &str) -> Result<Vec<MarkedYaml<'_>>, ScanError> {
    let mut loader = YamlLoader::<MarkedYaml>::default();
    loader.early_parse(false);
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut loader, true)?;
    if let Some(e) = loader.error() {
        return Err(e.clone());
    }
    Ok(loader.into_documents())
}

/// The tag yaml.v3 sees (`!!int`, `!foo`), or `None` for an untagged scalar.
pub(super) fn short_tag(tag: Option<&Tag>) -> Option<String> {
    let tag = tag?;
    if tag.is_yaml_core_schema() {
        Some(format!("!!{}", tag.suffix))
    } else if tag.handle == "!" {
        Some(format!("!{}", tag.suffix))
    } else {
        Some(format!("{}{}", tag.handle, tag.suffix))
    }
}

/// Whether a scalar is the merge key `<<`.
pub(super) fn is_merge_key(text: &str, style: ScalarStyle, tag: Option<&str>) -> bool {
    style == ScalarStyle::Plain && text == "<<" && matches!(tag, None | Some("!") | Some("!!merge"))
}

/// Resolve a scalar as yaml.v3 does (`resolve` in its `resolve.go`, plus its decoding of
/// `!!binary`). `Err` carries yaml.v3's message.
pub(super) fn resolve(
    text: &str,
    style: ScalarStyle,
    tag: Option<&str>,
) -> Result<GoScalar, String> {
    let plain = style == ScalarStyle::Plain;
    match tag {
        Some("!!str") => return Ok(GoScalar::Str(text.to_string())),
        Some("!!binary") => {
            return match base64_decode(text) {
                Some(bytes) => Ok(GoScalar::Str(String::from_utf8_lossy(&bytes).into_owned())),
                None => Err("!!binary value contains invalid base64 data".to_string()),
            };
        }
        // A quoted scalar without a tag is a string; so is any scalar with a tag yaml.v3 does
        // not resolve (`!foo`, `!`).
        None if !plain => return Ok(GoScalar::Str(text.to_string())),
        Some(t)
            if !matches!(
                t,
                "!!bool" | "!!int" | "!!float" | "!!null" | "!!timestamp" | "!!merge"
            ) =>
        {
            return Ok(GoScalar::Str(text.to_string()));
        }
        _ => {}
    }
    let (rtag, value) = resolve_plain(text, tag);
    let Some(want) = tag else {
        return Ok(value);
    };
    if want == rtag || want == "!!merge" {
        return Ok(value);
    }
    // A `!!float` tag turns an integer into a float; any other mismatch is an error.
    if want == "!!float" {
        if let GoScalar::Int(i) = value {
            return Ok(GoScalar::Float(i as f64));
        }
    }
    Err(format!("cannot decode {rtag} `{text}` as a {want}"))
}

fn resolve_plain(text: &str, tag: Option<&str>) -> (&'static str, GoScalar) {
    match text {
        "true" | "True" | "TRUE" => return ("!!bool", GoScalar::Bool(true)),
        "false" | "False" | "FALSE" => return ("!!bool", GoScalar::Bool(false)),
        "" | "~" | "null" | "Null" | "NULL" => return ("!!null", GoScalar::Null),
        ".nan" | ".NaN" | ".NAN" => return ("!!float", GoScalar::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return ("!!float", GoScalar::Float(f64::INFINITY));
        }
        "-.inf" | "-.Inf" | "-.INF" => return ("!!float", GoScalar::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let string = ("!!str", GoScalar::Str(text.to_string()));
    match text.as_bytes()[0] {
        b'.' => match go_parse_float(text) {
            Some(f) => ("!!float", GoScalar::Float(f)),
            None => string,
        },
        b'0'..=b'9' | b'+' | b'-' => {
            if matches!(tag, None | Some("!!timestamp")) {
                if let Some(t) = parse_timestamp(text) {
                    return ("!!timestamp", GoScalar::Time(t));
                }
            }
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            if let Some(i) = go_parse_int(&plain) {
                return ("!!int", GoScalar::Int(i));
            }
            if let Some(u) = go_parse_uint(&plain) {
                return ("!!int", GoScalar::Uint(u));
            }
            if is_yaml_style_float(&plain) {
                if let Some(f) = go_parse_float(&plain) {
                    return ("!!float", GoScalar::Float(f));
                }
            }
            let radix = |digits: &str, neg: bool, base: u32| -> Option<GoScalar> {
                let sign = if neg { "-" } else { "" };
                let body = format!("{sign}{digits}");
                if let Some(i) = parse_digits_i64(&body, base) {
                    return Some(GoScalar::Int(i));
                }
                if neg {
                    return None;
                }
                u64::from_str_radix(digits, base)
                    .ok()
                    .filter(|_| valid_digits(digits, base))
                    .map(GoScalar::Uint)
            };
            let found = if let Some(d) = plain.strip_prefix("0b") {
                radix(d, false, 2)
            } else if let Some(d) = plain.strip_prefix("-0b") {
                radix(d, true, 2)
            } else if let Some(d) = plain.strip_prefix("0o") {
                radix(d, false, 8)
            } else if let Some(d) = plain.strip_prefix("-0o") {
                radix(d, true, 8)
            } else {
                None
            };
            match found {
                Some(v) => ("!!int", v),
                None => string,
            }
        }
        _ => string,
    }
}

fn valid_digits(digits: &str, base: u32) -> bool {
    !digits.is_empty() && digits.chars().all(|c| c.is_digit(base))
}

fn parse_digits_i64(s: &str, base: u32) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !valid_digits(digits, base) {
        return None;
    }
    i64::from_str_radix(s, base).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)` (underscores already removed): an optional sign, then
/// `0x`, `0o`, `0b` or a leading `0` (octal) for the base.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let mag = go_parse_uint(body)?;
    if neg {
        if mag <= 1u64 << 63 {
            Some((mag as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: no sign.
fn go_parse_uint(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (base, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if !valid_digits(digits, base) {
        return None;
    }
    u64::from_str_radix(digits, base).ok()
}

/// yaml.v3's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text: `None` for a syntax error or a value out
/// of range (Go returns an error there).
fn go_parse_float(s: &str) -> Option<f64> {
    let ok = s
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// Standard base64 with padding, as Go's `base64.StdEncoding.DecodeString` reads it (line
/// breaks ignored).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'\n' && c != b'\r').collect();
    if clean.len() % 4 != 0 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let chunks = clean.len() / 4;
    for (n, chunk) in clean.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && n + 1 != chunks) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | val(c)?;
        }
        acc <<= 6 * pad as u32;
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        // Go rejects non-zero bits in the padding.
        let keep = 3 - pad;
        if bytes[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

/// yaml.v3's timestamp formats, tried in order with Go's `time.Parse`:
/// `2006-1-2T15:4:5.999999999Z07:00` (also with a lower-case `t`),
/// `2006-1-2 15:4:5.999999999` and `2006-1-2`. Returns the time as Go's `Time.String` prints
/// it, for a gateway whose local time zone is UTC.
fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut p = Cursor { b, i: 5 };
    let year: i64 = s[..4].parse().ok()?;
    let month = p.num(1, 2)?;
    p.lit(b'-')?;
    let day = p.num(1, 2)?;
    let date_only = p.i == b.len();
    let (mut hour, mut min, mut sec, mut nanos, mut offset) = (0, 0, 0, 0i64, 0i64);
    if !date_only {
        let sep = p.next()?;
        let zoned = match sep {
            b'T' | b't' => true,
            b' ' => false,
            _ => return None,
        };
        hour = p.num(1, 2)?;
        p.lit(b':')?;
        min = p.num(1, 2)?;
        p.lit(b':')?;
        sec = p.num(1, 2)?;
        if p.i + 1 < b.len() && matches!(b[p.i], b'.' | b',') && b[p.i + 1].is_ascii_digit() {
            p.i += 1;
            let start = p.i;
            while p.i < b.len() && b[p.i].is_ascii_digit() {
                p.i += 1;
            }
            let digits = &s[start..p.i.min(start + 9)];
            nanos = format!("{digits:0<9}").parse().ok()?;
        }
        if zoned {
            match p.next()? {
                b'Z' => {}
                sign @ (b'+' | b'-') => {
                    let hh = p.num(2, 2)?;
                    p.lit(b':')?;
                    let mm = p.num(2, 2)?;
                    if hh > 24 || mm > 60 {
                        return None;
                    }
                    offset = (hh * 3600 + mm * 60) * if sign == b'-' { -1 } else { 1 };
                }
                _ => return None,
            }
        }
        if p.i != b.len() {
            return None;
        }
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
        return None;
    }
    if hour >= 24 || min >= 60 || sec >= 60 {
        return None;
    }
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let zone = if offset == 0 {
        "+0000 UTC".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let m = offset.abs() / 60;
        let z = format!("{sign}{:02}{:02}", m / 60, m % 60);
        format!("{z} {z}")
    };
    Some(format!(
        "{year:04}-{month:02}-{day:02} {hour:02}:{min:02}:{sec:02}{frac} {zone}"
    ))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn lit(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// `min` to `max` digits.
    fn num(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> GoScalar {
        resolve(s, ScalarStyle::Plain, None).expect("resolves")
    }

    #[test]
    fn numbers_resolve_as_yaml_v3_does() {
        assert_eq!(plain("017"), GoScalar::Int(15));
        assert_eq!(plain("0o17"), GoScalar::Int(15));
        assert_eq!(plain("08"), GoScalar::Float(8.0));
        assert_eq!(plain("1_000"), GoScalar::Int(1000));
        assert_eq!(plain("0b101"), GoScalar::Int(5));
        assert_eq!(plain("-0b11"), GoScalar::Int(-3));
        assert_eq!(plain("0x_1F"), GoScalar::Int(31));
        assert_eq!(plain("+7"), GoScalar::Int(7));
        assert_eq!(plain("1e3"), GoScalar::Float(1000.0));
        assert_eq!(plain("1000000.0"), GoScalar::Float(1e6));
        assert_eq!(plain(".5"), GoScalar::Float(0.5));
        assert_eq!(plain("18446744073709551615"), GoScalar::Uint(u64::MAX));
        assert_eq!(plain("99999999999999999999"), GoScalar::Float(1e20));
        assert_eq!(plain("1e400"), GoScalar::Str("1e400".into()));
        assert_eq!(plain(".inf"), GoScalar::Float(f64::INFINITY));
        assert!(matches!(plain(".NaN"), GoScalar::Float(f) if f.is_nan()));
        assert_eq!(plain(".iNf"), GoScalar::Str(".iNf".into()));
    }

    #[test]
    fn booleans_nulls_and_strings() {
        assert_eq!(plain("True"), GoScalar::Bool(true));
        assert_eq!(plain("FALSE"), GoScalar::Bool(false));
        assert_eq!(plain("yes"), GoScalar::Str("yes".into()));
        assert_eq!(plain("on"), GoScalar::Str("on".into()));
        assert_eq!(plain("~"), GoScalar::Null);
        assert_eq!(plain("Null"), GoScalar::Null);
        let quoted = resolve("5", ScalarStyle::DoubleQuoted, None);
        assert_eq!(quoted, Ok(GoScalar::Str("5".into())));
        assert_eq!(
            resolve("5", ScalarStyle::Plain, Some("!!str")),
            Ok(GoScalar::Str("5".into()))
        );
        assert_eq!(
            resolve("7", ScalarStyle::DoubleQuoted, Some("!!int")),
            Ok(GoScalar::Int(7))
        );
        assert_eq!(
            resolve("3", ScalarStyle::Plain, Some("!!float")),
            Ok(GoScalar::Float(3.0))
        );
        assert_eq!(
            resolve("abc", ScalarStyle::Plain, Some("!!int")),
            Err("cannot decode !!str `abc` as a !!int".into())
        );
    }

    #[test]
    fn binary_is_decoded() {
        let got = resolve("aGVsbG8=", ScalarStyle::Plain, Some("!!binary"));
        assert_eq!(got, Ok(GoScalar::Str("hello".into())));
        assert!(resolve("aGVsbG8", ScalarStyle::Plain, Some("!!binary")).is_err());
    }

    #[test]
    fn dates_are_timestamps_printed_as_go_prints_them() {
        let t = |s: &str| plain(s);
        assert_eq!(
            t("2024-01-01"),
            GoScalar::Time("2024-01-01 00:00:00 +0000 UTC".into())
        );
        assert_eq!(
            t("2024-1-2"),
            GoScalar::Time("2024-01-02 00:00:00 +0000 UTC".into())
        );
        assert_eq!(
            t("2024-01-01T10:00:00.50Z"),
            GoScalar::Time("2024-01-01 10:00:00.5 +0000 UTC".into())
        );
        assert_eq!(
            t("2024-01-01T10:00:00+02:00"),
            GoScalar::Time("2024-01-01 10:00:00 +0200 +0200".into())
        );
        assert_eq!(
            t("2024-01-01 10:00:00"),
            GoScalar::Time("2024-01-01 10:00:00 +0000 UTC".into())
        );
        assert_eq!(t("2024-13-01"), GoScalar::Str("2024-13-01".into()));
        assert_eq!(t("2023-02-29"), GoScalar::Str("2023-02-29".into()));
    }
}
