//! Regular expressions as the gateway's Go `regexp` package reads them, translated to the
//! `regex` crate's syntax.
//!
//! Both are RE2-style engines, but they read some text differently: in Go `\d`, `\w`, `\s`
//! and `\b` are ASCII-only (`^\d+$` does not match "١٢"), `\Q…\E` quotes, `a{,3}` is the
//! literal text `a{,3}`, `\<` is a literal `<`, and `\1`–`\7` followed by octal digits are
//! octal escapes; Go rejects repeat counts over 1000, a repetition of a repetition (`a**`), the
//! `x` flag and escapes it does not know (`\e`, `\Z`, `\u`). Every literal is written as a
//! `\x{…}` escape, so no character means more to the `regex` crate than it did to Go.

use regex::Regex;

/// Compile a pattern with Go's syntax and meaning. `Err` carries Go's message
/// (`error parsing regexp: invalid nested repetition operator: `**``).
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    let translated = translate(pattern).map_err(|(code, expr)| go_error(code, &expr))?;
    crate::engine::predicate::compile_regex(&translated).map_err(|e| {
        let detail = e.to_string();
        let last = detail.lines().last().unwrap_or("").trim().to_string();
        format!("error parsing regexp: {last}: `{pattern}`")
    })
}

fn go_error(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

const NESTED: &str = "invalid nested repetition operator";
const REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_ARG: &str = "missing argument to repetition operator";
const ESCAPE: &str = "invalid escape sequence";
const PERL_OP: &str = "invalid or unsupported Perl syntax";
const BRACKET: &str = "missing closing ]";
const RANGE: &str = "invalid character class range";
const TRAILING: &str = "trailing backslash at end of expression";

type Fail = (&'static str, String);

/// Go's maximum repeat count.
const MAX_REPEAT: u32 = 1000;

fn lit(out: &mut String, c: char) {
    out.push_str(&format!("\\x{{{:X}}}", c as u32));
}

/// Translate Go syntax to the `regex` crate's.
fn translate(p: &str) -> Result<String, Fail> {
    let chars: Vec<char> = p.chars().collect();
    let text = |a: usize, b: usize| -> String { chars[a..b.min(chars.len())].iter().collect() };
    let mut out = String::new();
    let mut i = 0;
    // Whether the last item can be repeated, and the text of the last repetition operator
    // when the last item is one (Go: `lastRepeat`).
    let mut operand = false;
    let mut last_repeat: Option<usize> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' | '+' | '?' | '{' => {
                let start = i;
                let (end, min_max) = if c == '{' {
                    match parse_repeat(&chars, i) {
                        Some((end, min, max)) => (end, Some((min, max))),
                        None => {
                            // Not a repeat: a literal brace.
                            lit(&mut out, '{');
                            operand = true;
                            last_repeat = None;
                            i += 1;
                            continue;
                        }
                    }
                } else {
                    (i + 1, None)
                };
                let mut after = end;
                if after < chars.len() && chars[after] == '?' {
                    after += 1;
                }
                if let Some(prev) = last_repeat {
                    return Err((NESTED, text(prev, after)));
                }
                if !operand {
                    return Err((MISSING_ARG, text(start, end)));
                }
                if let Some((min, max)) = min_max {
                    if min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min) {
                        return Err((REPEAT_SIZE, text(start, end)));
                    }
                }
                out.push_str(&text(start, after));
                last_repeat = Some(start);
                i = after;
            }
            '\\' => {
                last_repeat = None;
                let Some(&next) = chars.get(i + 1) else {
                    return Err((TRAILING, String::new()));
                };
                if next == 'Q' {
                    let body_start = i + 2;
                    let mut j = body_start;
                    while j < chars.len() && !(chars[j] == '\\' && chars.get(j + 1) == Some(&'E')) {
                        j += 1;
                    }
                    for &q in &chars[body_start..j] {
                        lit(&mut out, q);
                        operand = true;
                    }
                    i = if j < chars.len() { j + 2 } else { j };
                    continue;
                }
                match next {
                    'A' | 'z' => {
                        out.push('\\');
                        out.push(next);
                        operand = true;
                        i += 2;
                    }
                    'b' | 'B' => {
                        out.push_str(&format!("(?-u:\\{next})"));
                        operand = true;
                        i += 2;
                    }
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                        out.push_str(&perl_class(next, true));
                        operand = true;
                        i += 2;
                    }
                    'p' | 'P' => {
                        let end =
                            unicode_class_end(&chars, i).ok_or((RANGE, text(i, chars.len())))?;
                        out.push_str(&text(i, end));
                        operand = true;
                        i = end;
                    }
                    _ => {
                        let (ch, end) = escape(&chars, i)?;
                        lit(&mut out, ch);
                        operand = true;
                        i = end;
                    }
                }
            }
            '[' => {
                last_repeat = None;
                let end = class(&chars, i, &mut out)?;
                operand = true;
                i = end;
            }
            '(' => {
                last_repeat = None;
                if chars.get(i + 1) == Some(&'?') {
                    let end = group_flags(&chars, i)?;
                    let head = text(i, end);
                    out.push_str(&head);
                    // `(?i)` sets flags and leaves nothing to repeat; `(?i:` opens a group.
                    operand = false;
                    i = end;
                } else {
                    out.push('(');
                    operand = false;
                    i += 1;
                }
            }
            '|' => {
                last_repeat = None;
                out.push('|');
                operand = false;
                i += 1;
            }
            ')' | '^' | '$' | '.' => {
                last_repeat = None;
                out.push(c);
                operand = true;
                i += 1;
            }
            _ => {
                last_repeat = None;
                lit(&mut out, c);
                operand = true;
                i += 1;
            }
        }
    }
    Ok(out)
}

/// `{n}`, `{n,}`, `{n,m}` at `i`: (end, min, max); `None` when the text is not a repeat (Go
/// then reads the brace literally). Counts too large to read are returned as over the limit.
fn parse_repeat(chars: &[char], i: usize) -> Option<(usize, u32, Option<u32>)> {
    let mut j = i + 1;
    let num = |j: &mut usize| -> Option<u32> {
        let start = *j;
        while *j < chars.len() && chars[*j].is_ascii_digit() {
            *j += 1;
        }
        if *j == start {
            return None;
        }
        let digits: String = chars[start..*j].iter().collect();
        // Go does not read a count with a leading zero: the brace is then literal.
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        Some(digits.parse().unwrap_or(u32::MAX))
    };
    let min = num(&mut j)?;
    let max = match chars.get(j)? {
        '}' => Some(min),
        ',' => {
            j += 1;
            if chars.get(j)? == &'}' {
                None
            } else {
                Some(num(&mut j)?)
            }
        }
        _ => return None,
    };
    if chars.get(j)? != &'}' {
        return None;
    }
    Some((j + 1, min, max))
}

/// `\p{Name}`, `\pL`, `\P…` at `i`: the end.
fn unicode_class_end(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 2)? {
        '{' => {
            let close = chars[i + 3..].iter().position(|&c| c == '}')?;
            Some(i + 3 + close + 1)
        }
        _ => Some(i + 3),
    }
}

/// A Go escape that stands for one character (`\n`, `\x41`, `\101`, `\.`) at `i`.
fn escape(chars: &[char], i: usize) -> Result<(char, usize), Fail> {
    let bad = |end: usize| -> Fail { (ESCAPE, chars[i..end.min(chars.len())].iter().collect()) };
    let c = *chars.get(i + 1).ok_or((TRAILING, String::new()))?;
    let is_octal = |k: usize| chars.get(k).is_some_and(|c| ('0'..='7').contains(c));
    match c {
        '1'..='7' if !is_octal(i + 2) => Err(bad(i + 2)),
        '0'..='7' => {
            let mut j = i + 2;
            while j < i + 4 && is_octal(j) {
                j += 1;
            }
            let digits: String = chars[i + 1..j].iter().collect();
            let v = u32::from_str_radix(&digits, 8).map_err(|_| bad(j))?;
            Ok((char::from_u32(v).ok_or_else(|| bad(j))?, j))
        }
        'x' => {
            if chars.get(i + 2) == Some(&'{') {
                let close = chars[i + 3..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| bad(chars.len()))?;
                let hex: String = chars[i + 3..i + 3 + close].iter().collect();
                let end = i + 3 + close + 1;
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad(end))?;
                if hex.is_empty() || v > 0x10FFFF {
                    return Err(bad(end));
                }
                Ok((char::from_u32(v).ok_or_else(|| bad(end))?, end))
            } else {
                let hex: String = chars
                    .get(i + 2..i + 4)
                    .ok_or_else(|| bad(chars.len()))?
                    .iter()
                    .collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad(i + 4))?;
                if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(i + 4));
                }
                Ok((char::from_u32(v).ok_or_else(|| bad(i + 4))?, i + 4))
            }
        }
        'a' => Ok(('\x07', i + 2)),
        'f' => Ok(('\x0C', i + 2)),
        'n' => Ok(('\n', i + 2)),
        'r' => Ok(('\r', i + 2)),
        't' => Ok(('\t', i + 2)),
        'v' => Ok(('\x0B', i + 2)),
        // Any ASCII punctuation escapes itself.
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, i + 2)),
        _ => Err(bad(i + 2)),
    }
}

/// Go's Perl classes, ASCII only: as a class of its own (`outside`), or as the items to put
/// inside a bracketed class.
fn perl_class(c: char, outside: bool) -> String {
    let (body, negated) = match c {
        'd' => (r"0-9", false),
        'D' => (r"0-9", true),
        's' => (r"\t\n\x0C\r\x20", false),
        'S' => (r"\t\n\x0C\r\x20", true),
        'w' => (r"0-9A-Za-z_", false),
        _ => (r"0-9A-Za-z_", true),
    };
    match (outside, negated) {
        (_, true) => format!("[^{body}]"),
        (true, false) => format!("[{body}]"),
        (false, false) => body.to_string(),
    }
}

/// A bracketed class at `i`, written to `out` item by item; returns the end.
fn class(chars: &[char], i: usize, out: &mut String) -> Result<usize, Fail> {
    let missing = || -> Fail { (BRACKET, chars[i..].iter().collect()) };
    let mut j = i + 1;
    let mut body = String::new();
    let negated = chars.get(j) == Some(&'^');
    if negated {
        j += 1;
    }
    let mut first = true;
    loop {
        let c = *chars.get(j).ok_or_else(missing)?;
        if c == ']' && !first {
            j += 1;
            break;
        }
        first = false;
        // POSIX classes: `[:alpha:]`, `[:^alpha:]`.
        if c == '[' && chars.get(j + 1) == Some(&':') {
            if let Some(close) = find(chars, j + 2, ":]") {
                let name: String = chars[j + 2..close].iter().collect();
                let bare = name.strip_prefix('^').unwrap_or(&name);
                if !POSIX.contains(&bare) {
                    return Err((RANGE, chars[j..close + 2].iter().collect()));
                }
                body.push_str(&format!("[:{name}:]"));
                j = close + 2;
                continue;
            }
        }
        if c == '\\' {
            match chars.get(j + 1) {
                Some('p' | 'P') => {
                    let end = unicode_class_end(chars, j).ok_or_else(missing)?;
                    body.extend(&chars[j..end]);
                    j = end;
                    continue;
                }
                Some(&k @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                    body.push_str(&perl_class(k, false));
                    j += 2;
                    continue;
                }
                _ => {}
            }
        }
        let range_start = j;
        let (lo, next) = class_char(chars, j, missing)?;
        j = next;
        let mut hi = lo;
        if chars.get(j) == Some(&'-') && chars.get(j + 1).is_some_and(|&c| c != ']') {
            let (h, next) = class_char(chars, j + 1, missing)?;
            hi = h;
            j = next;
            if hi < lo {
                return Err((RANGE, chars[range_start..j].iter().collect()));
            }
        }
        lit(&mut body, lo);
        if hi != lo {
            body.push('-');
            lit(&mut body, hi);
        }
    }
    out.push('[');
    if negated {
        out.push('^');
    }
    out.push_str(&body);
    out.push(']');
    Ok(j)
}

const POSIX: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

fn class_char(chars: &[char], j: usize, missing: impl Fn() -> Fail) -> Result<(char, usize), Fail> {
    match chars.get(j) {
        None => Err(missing()),
        Some('\\') => escape(chars, j),
        Some(&c) => Ok((c, j + 1)),
    }
}

fn find(chars: &[char], from: usize, needle: &str) -> Option<usize> {
    let n: Vec<char> = needle.chars().collect();
    (from..chars.len().saturating_sub(n.len() - 1)).find(|&k| chars[k..k + n.len()] == n[..])
}

/// `(?…` at `i`: named groups and flags as Go accepts them; returns the end of the group head.
fn group_flags(chars: &[char], i: usize) -> Result<usize, Fail> {
    let rest: String = chars[i..].iter().collect();
    let perl = |end: usize| -> Fail { (PERL_OP, chars[i..end.min(chars.len())].iter().collect()) };
    // Named captures: `(?P<name>` and `(?<name>`.
    for prefix in ["(?P<", "(?<"] {
        if rest.starts_with(prefix) {
            let start = i + prefix.chars().count();
            let close = chars[start..]
                .iter()
                .position(|&c| c == '>')
                .ok_or_else(|| ("invalid named capture", rest.clone()))?;
            let name: String = chars[start..start + close].iter().collect();
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err((
                    "invalid named capture",
                    chars[i..start + close + 1].iter().collect(),
                ));
            }
            return Ok(start + close + 1);
        }
    }
    let mut j = i + 2;
    let mut sign_seen = false;
    let mut flag_seen = false;
    loop {
        match chars.get(j) {
            None => return Err(("missing closing )", rest)),
            Some('i' | 'm' | 's' | 'U') => {
                flag_seen = true;
                j += 1;
            }
            Some('-') if !sign_seen => {
                sign_seen = true;
                flag_seen = false;
                j += 1;
            }
            Some(':' | ')') => {
                // `(?-)` and `(?i-)` name no flag after the sign.
                if sign_seen && !flag_seen {
                    return Err(perl(j + 1));
                }
                return Ok(j + 1);
            }
            Some(_) => return Err(perl(j + 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        compile(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .is_match(s)
    }

    fn err(p: &str) -> String {
        compile(p).err().unwrap_or_else(|| panic!("{p} compiled"))
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(!m(r"^\d+$", "١٢"));
        assert!(m(r"^\d+$", "12"));
        assert!(!m(r"^\w+$", "é"));
        assert!(m(r"^\W$", "é"));
        assert!(!m(r"\s", "\u{a0}"));
        assert!(!m(r"\s", "\x0B"));
        assert!(m(r"[\d]", "5"));
        assert!(!m(r"[\d]", "٥"));
        assert!(m(r"\bfoo\b", "a foo b"));
        assert!(m(r"\bfoo\b", "éfooé"), "é is not an ASCII word character");
    }

    #[test]
    fn go_only_syntax_reads_as_go_reads_it() {
        assert!(m(r"^\Qa.b\E$", "a.b"));
        assert!(!m(r"^\Qa.b\E$", "axb"));
        assert!(m(r"^a{,3}$", "a{,3}"));
        assert!(!m(r"^a{,3}$", "aa"));
        assert!(m(r"\<", "<"));
        assert!(m(r"^\101$", "A"));
        assert!(m(r"^[a-]$", "-"));
        assert!(m(r"^[[]$", "["));
        assert!(m(r"^[&&a]+$", "&a"));
        assert!(m(r"^x{1000}$", &"x".repeat(1000)));
        assert!(m(r"(?i)abc", "ABC"));
        assert!(m(r"^(?P<n>a)(?<m>b)$", "ab"));
    }

    #[test]
    fn go_rejects_what_go_rejects() {
        assert_eq!(
            err("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            err("a{2}{3}"),
            "error parsing regexp: invalid nested repetition operator: `{2}{3}`"
        );
        assert_eq!(
            err("x{1001}"),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert_eq!(
            err(r"\e"),
            "error parsing regexp: invalid escape sequence: `\\e`"
        );
        assert_eq!(
            err(r"\1"),
            "error parsing regexp: invalid escape sequence: `\\1`"
        );
        assert_eq!(
            err("(?x)a"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"
        );
        assert_eq!(
            err("*a"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert!(err(r"\Z").contains("invalid escape sequence"));
        assert!(err(r"\C").contains("invalid escape sequence"));
        assert!(err("a{2,1}").contains("invalid repeat count"));
        assert!(err("[z-a]").contains("invalid character class range"));
        assert!(err("(").starts_with("error parsing regexp"));
        assert!(compile("a*?").is_ok());
        assert!(compile("a+?b").is_ok());
    }
}
