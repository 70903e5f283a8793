//! How the Intercept gateway's Go build prints and converts values, for the dialect that
//! compares by printed form (`fmt.Sprintf("%v")`) and converts limits and increments with
//! `int64(f)`.
//!
//! Arguments reach the gateway as JSON decoded by `encoding/json`, so every argument number is
//! a `float64`; policy values come from YAML, where an integer is a Go `int` and prints without
//! a fraction or exponent. [`Printed`] says which of the two a value is.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

/// Which Go types a JSON value's numbers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbers {
    /// Every number is a `float64` (call arguments).
    Float,
    /// Integers are `int`, the rest `float64` (policy values read from YAML, counter values).
    IntOrFloat,
}

/// Go's `%q` of a string (`strconv.Quote`): double-quoted, with `\"` and `\\`, the named
/// escapes, `\xNN` for other ASCII controls, and `\uNNNN` / `\UNNNNNNNN` (lower-case hex) for
/// every other character Go does not count as printable.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0C' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0B' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c as u32 == 0x7F => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space
/// (so not the other spaces, nor format characters such as the soft hyphen).
fn is_print(c: char) -> bool {
    static PRINT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("a valid class"));
    match c {
        ' '..='~' => true,
        c if c.is_ascii() => false,
        c => PRINT.is_match(c.encode_utf8(&mut [0; 4])),
    }
}

/// A value as Go's `fmt` prints it with `%v`: strings bare, `<nil>`, `[a b]`, `map[k:v]`
/// (keys sorted), floats as `strconv.FormatFloat(f, 'g', -1, 64)`.
pub(crate) fn printed(v: &Value, numbers: Numbers) -> String {
    let mut out = String::new();
    print_into(v, numbers, &mut out);
    out
}

fn print_into(v: &Value, numbers: Numbers, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => match (numbers, n.as_i64()) {
            (Numbers::IntOrFloat, Some(i)) if !n.is_f64() => out.push_str(&i.to_string()),
            _ => out.push_str(&format_float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print_into(item, numbers, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                print_into(&map[k], numbers, out);
            }
            out.push(']');
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` (what `%v` prints for a `float64`): the
/// shortest digits that read back as `f`, in exponent form when the decimal exponent is below
/// −4 or at least 6 (the shortest format decides with a precision of 6, not the digit count),
/// with at least two exponent digits.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    }
}

/// Go's `int64(f)` on amd64 (`CVTTSD2SI`): truncation toward zero, and the minimum int64 for
/// NaN and anything out of range (where Rust's `as` would saturate).
pub(crate) fn float_to_int64(f: f64) -> i64 {
    // 2^63 is exactly representable; every float below it and at least −2^63 fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f.trunc() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each printed by Go 1.19's `fmt.Sprintf("%q", …)`.
    #[test]
    fn quotes_as_go_quotes() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(
            quote("é😀\u{e000}\u{200b}\u{3000}x"),
            r#""é😀\ue000\u200b\u3000x""#
        );
        assert_eq!(
            quote("\u{7}\u{8}\u{b}\u{c}\r\t\u{1b}"),
            r#""\a\b\v\f\r\t\x1b""#
        );
    }

    #[test]
    fn floats_print_like_strconv_g_shortest() {
        let cases: &[(f64, &str)] = &[
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (123_456.0, "123456"),
            (999_999.0, "999999"),
            (123_456.5, "123456.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (-2.5e-7, "-2.5e-07"),
            (5.0, "5"),
            (0.1, "0.1"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (-0.0, "-0"),
        ];
        for (f, want) in cases {
            assert_eq!(format_float(*f), *want, "{f}");
        }
    }

    #[test]
    fn argument_numbers_are_floats_policy_integers_are_ints() {
        assert_eq!(printed(&json!(1_000_000), Numbers::Float), "1e+06");
        assert_eq!(printed(&json!(1_000_000), Numbers::IntOrFloat), "1000000");
        assert_eq!(printed(&json!(1_000_000.0), Numbers::IntOrFloat), "1e+06");
        assert_eq!(
            printed(&json!({"b": [1, 2.5], "a": null}), Numbers::Float),
            "map[a:<nil> b:[1 2.5]]"
        );
        assert_eq!(printed(&json!(["a", true]), Numbers::Float), "[a true]");
    }

    #[test]
    fn int64_conversion_is_amd64s() {
        assert_eq!(float_to_int64(2.9), 2);
        assert_eq!(float_to_int64(-2.9), -2);
        assert_eq!(float_to_int64(1e19), i64::MIN);
        assert_eq!(float_to_int64(-1e19), i64::MIN);
        assert_eq!(float_to_int64(9_223_372_036_854_775_807.0), i64::MIN);
        assert_eq!(float_to_int64(-9_223_372_036_854_775_808.0), i64::MIN);
        assert_eq!(float_to_int64(f64::NAN), i64::MIN);
        assert_eq!(
            float_to_int64(9_223_372_036_854_774_784.0),
            9_223_372_036_854_774_784
        );
    }
}
