//! Argument text checked and read without building it: whether a text is certainly an object
//! [`serde_json`] parses into a map ([`object_certainly_parses`]), and where the value at a path
//! lies in such a text ([`value_at`]). Both accept a conservative subset of JSON and leave the
//! rest to `serde_json` itself, so a refusal is only ever a missed shortcut.

use std::ops::Range;

/// Whether `text` is certainly one JSON object that [`serde_json`] parses into a map (so that
/// the table reader accepts it as arguments). A conservative subset of JSON: numbers with an
/// exponent or a digit run over 200, surrogate escapes and nesting deeper than 100 are left to
/// the table reader, which then decides exactly.
pub(crate) fn object_certainly_parses(b: &[u8]) -> bool {
    // Without backslashes and control characters anywhere (the usual case, checked at memory
    // speed), a string is everything up to the next quote.
    let plain = !b
        .iter()
        .fold(false, |bad, &c| bad | (c < 0x20) | (c == b'\\'));
    if plain {
        check_object::<true>(b)
    } else {
        check_object::<false>(b)
    }
}

/// A string from its opening quote at `i`; the index after the closing quote.
#[inline(always)]
fn any_string<const PLAIN: bool>(b: &[u8], i: usize) -> Option<usize> {
    if PLAIN {
        plain_string(b, i)
    } else {
        string(b, i)
    }
}

#[inline(always)]
fn check_object<const PLAIN: bool>(b: &[u8]) -> bool {
    // Open containers, one bit each (set: object), innermost lowest.
    let mut stack: u128 = 0;
    let mut depth = 0u32;
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return false;
    }
    // Whether a value comes next (else a comma or a closing bracket).
    let mut want_value = true;
    loop {
        if want_value {
            let Some(&c) = b.get(i) else {
                return false;
            };
            match c {
                b'{' | b'[' => {
                    if depth >= MAX_DEPTH {
                        return false;
                    }
                    let object = c == b'{';
                    stack = (stack << 1) | u128::from(object);
                    depth += 1;
                    i = ws(b, i + 1);
                    match b.get(i) {
                        Some(b'}') if object => {
                            i += 1;
                            stack >>= 1;
                            depth -= 1;
                            want_value = false;
                        }
                        Some(b']') if !object => {
                            i += 1;
                            stack >>= 1;
                            depth -= 1;
                            want_value = false;
                        }
                        _ if object => match key::<PLAIN>(b, i) {
                            Some(next) => i = next,
                            None => return false,
                        },
                        _ => {}
                    }
                    continue;
                }
                b'"' => match any_string::<PLAIN>(b, i) {
                    Some(next) => i = next,
                    None => return false,
                },
                b'-' | b'0'..=b'9' => match number(b, i) {
                    Some(next) => i = next,
                    None => return false,
                },
                b't' if b[i..].starts_with(b"true") => i += 4,
                b'f' if b[i..].starts_with(b"false") => i += 5,
                b'n' if b[i..].starts_with(b"null") => i += 4,
                _ => return false,
            }
            want_value = false;
            continue;
        }
        if depth == 0 {
            return ws(b, i) == b.len();
        }
        i = ws(b, i);
        let object = stack & 1 == 1;
        match b.get(i) {
            Some(b',') => {
                i = ws(b, i + 1);
                if object {
                    match key::<PLAIN>(b, i) {
                        Some(next) => i = next,
                        None => return false,
                    }
                }
                want_value = true;
            }
            Some(b'}') if object => {
                i += 1;
                stack >>= 1;
                depth -= 1;
            }
            Some(b']') if !object => {
                i += 1;
                stack >>= 1;
                depth -= 1;
            }
            _ => return false,
        }
    }
}

const MAX_DEPTH: u32 = 100;
const MAX_DIGITS: usize = 200;

/// The index of the first byte from `i` on that is not JSON whitespace.
#[inline]
fn ws(b: &[u8], mut i: usize) -> usize {
    // Compact JSON has no whitespace: one comparison settles the usual case (every whitespace
    // byte is at most a space).
    if b.get(i).is_none_or(|&c| c > b' ') {
        return i;
    }
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// An object key from `i` and the colon after it: the index of the value.
#[inline(always)]
fn key<const PLAIN: bool>(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = ws(b, any_string::<PLAIN>(b, i)?);
    (b.get(i) == Some(&b':')).then(|| ws(b, i + 1))
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` from `i`, no exponent: the index after it.
#[inline]
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        Some(b'1'..=b'9') => i = digits(b, i)?,
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        i = digits(b, i + 1)?;
    }
    match b.get(i) {
        Some(b'e' | b'E') => None,
        _ => Some(i),
    }
}

#[inline]
fn digits(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    (i - start <= MAX_DIGITS).then_some(i)
}

/// A string without backslashes or control characters from its opening quote at `i`: the
/// index after the closing quote.
#[inline(always)]
fn plain_string(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    i += 1;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let quote = u64::from_le_bytes(w) ^ (ONES * u64::from(b'"'));
        let found = quote.wrapping_sub(ONES) & !quote & HIGH;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize + 1);
        }
        i += 8;
    }
    while *b.get(i)? != b'"' {
        i += 1;
    }
    Some(i + 1)
}

/// A string from its opening quote at `i`: escapes checked, control characters refused. The
/// index after the closing quote.
#[inline]
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    i += 1;
    loop {
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        while let Some(chunk) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let w = u64::from_le_bytes(w);
            let quote = w ^ (ONES * u64::from(b'"'));
            let slash = w ^ (ONES * u64::from(b'\\'));
            let special = ((quote.wrapping_sub(ONES) & !quote)
                | (slash.wrapping_sub(ONES) & !slash)
                | (w.wrapping_sub(ONES * 0x20) & !w))
                & HIGH;
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    let mut code = 0u32;
                    for &h in hex {
                        code = code * 16 + char::from(h).to_digit(16)?;
                    }
                    if (0xD800..=0xDFFF).contains(&code) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0..=0x1F => return None,
            _ => i += 1,
        }
    }
}

/// The byte range of the value at `path` in `text`: `Some(None)` when a key on the way is absent
/// or a step is not an object, `None` when `text` is not certainly an object
/// ([`object_certainly_parses`]). As in the map the text parses into, a later duplicate key
/// replaces an earlier one.
pub(crate) fn value_at<K: AsRef<str>>(text: &str, path: &[K]) -> Option<Option<Range<usize>>> {
    object_certainly_parses(text.as_bytes()).then(|| value_in_checked(text, path))
}

/// [`value_at`] in a text already known to be certainly an object (a reader checked it).
pub(crate) fn value_in_checked<K: AsRef<str>>(text: &str, path: &[K]) -> Option<Range<usize>> {
    let b = text.as_bytes();
    let plain = memchr::memchr(b'\\', b).is_none();
    find(text, plain, ws(b, 0), path)
}

/// [`value_at`] in the object that opens at `i` of a text known to be valid (`plain`: without
/// backslashes). Text that is not valid gives a miss, never a panic.
fn find<K: AsRef<str>>(text: &str, plain: bool, i: usize, path: &[K]) -> Option<Range<usize>> {
    let b = text.as_bytes();
    let (want, rest) = path.split_first()?;
    let want = want.as_ref();
    // Without escapes on either side, keys compare as bytes.
    let bytewise = plain && !want.contains('\\');
    let mut i = ws(b, i + 1);
    if *b.get(i)? == b'}' {
        return None;
    }
    let mut found = None;
    loop {
        let key_end = skip_string(b, plain, i)?;
        let hit = if bytewise {
            b.get(i + 1..key_end - 1)? == want.as_bytes()
        } else {
            key_is(text.get(i..key_end)?, want)
        };
        let start = ws(b, ws(b, key_end) + 1);
        let end = skip_value(b, plain, start)?;
        if hit {
            found = if rest.is_empty() {
                Some(start..end)
            } else if b[start] == b'{' {
                find(text, plain, start, rest)
            } else {
                None
            };
        }
        i = ws(b, end);
        if *b.get(i)? != b',' {
            return found;
        }
        i = ws(b, i + 1);
    }
}

/// Whether the quoted key `raw` is `want`, escapes decoded.
fn key_is(raw: &str, want: &str) -> bool {
    match raw.get(1..raw.len().saturating_sub(1)) {
        Some(inner) if !inner.contains('\\') => inner == want,
        _ => serde_json::from_str::<String>(raw).is_ok_and(|k| k == want),
    }
}

/// The index after the string that opens at `i` of a valid text.
#[inline]
fn skip_string(b: &[u8], plain: bool, mut i: usize) -> Option<usize> {
    if plain {
        return plain_string(b, i);
    }
    i += 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index after the value that starts at `i` of a valid text.
fn skip_value(b: &[u8], plain: bool, mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *b.get(i)? {
            b'"' => i = skip_string(b, plain, i)?,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
            }
            // Separators, whitespace and scalars inside a container.
            _ if depth > 0 => i += 1,
            // A scalar: it holds no whitespace and ends where the container goes on.
            _ => {
                let len = b[i..]
                    .iter()
                    .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r'));
                return Some(len.map_or(b.len(), |n| i + n));
            }
        }
        if depth == 0 {
            return Some(i);
        }
    }
}

/// `text` written to `out` as [`serde_json`] writes the map it parses into: no whitespace,
/// the keys of every object sorted and a repeated key's last value kept. Only text of a subset
/// of JSON is written (strings without escapes or control characters, integers of up to 18
/// digits other than `-0`, nesting up to 100 deep); for any other text nothing is written and
/// the answer is `false`, and the caller asks serde_json (whose number formatting this does
/// not repeat).
pub(crate) fn write_sorted(text: &str, out: &mut String) -> bool {
    let b = text.as_bytes();
    let start = out.len();
    let mut members = Vec::new();
    let i = ws(b, 0);
    let ok = b.get(i) == Some(&b'{')
        && sorted_value(text, i, 0, &mut members, out).is_some_and(|end| ws(b, end) == b.len());
    if !ok {
        out.truncate(start);
    }
    ok
}

/// The value at `i` written sorted to `out` (see [`write_sorted`]); the index after it. A
/// member is its key's and its value's ranges, kept in `members` while its object is written.
fn sorted_value(
    t: &str,
    i: usize,
    depth: u32,
    members: &mut Vec<(Range<usize>, Range<usize>)>,
    out: &mut String,
) -> Option<usize> {
    let b = t.as_bytes();
    // Every range written starts and ends at an ASCII byte.
    let push = |out: &mut String, r: Range<usize>| {
        out.push_str(t.get(r)?);
        Some(())
    };
    match *b.get(i)? {
        c @ (b'{' | b'[') => {
            if depth >= MAX_DEPTH {
                return None;
            }
            let object = c == b'{';
            let close = if object { b'}' } else { b']' };
            let mut j = ws(b, i + 1);
            out.push(char::from(c));
            if b.get(j) == Some(&close) {
                out.push(char::from(close));
                return Some(j + 1);
            }
            let first = members.len();
            loop {
                if object {
                    let key = j..escape_free_string(b, j)?;
                    j = ws(b, key.end);
                    if b.get(j) != Some(&b':') {
                        return None;
                    }
                    let value = ws(b, j + 1);
                    // Its extent now; checked as it is written, once the keys are sorted.
                    j = skip_value(b, false, value)?;
                    members.push((key, value..j));
                } else {
                    j = sorted_value(t, j, depth + 1, members, out)?;
                }
                j = ws(b, j);
                match *b.get(j)? {
                    b',' => {
                        j = ws(b, j + 1);
                        if !object {
                            out.push(',');
                        }
                    }
                    c if c == close => break,
                    _ => return None,
                }
            }
            if object {
                // Keys without their quotes (a quote sorts after a space). Stable: of a repeated
                // key, the value read last comes last.
                let inner = |r: &Range<usize>| &b[r.start + 1..r.end - 1];
                members[first..].sort_by(|x, y| inner(&x.0).cmp(inner(&y.0)));
                let mut scratch = String::new();
                for k in first..members.len() {
                    let (key, value) = members[k].clone();
                    let repeated = members.get(k + 1).is_some_and(|next| {
                        next.0.len() == key.len() && inner(&next.0) == inner(&key)
                    });
                    if repeated {
                        // Left out, but it must still be a value.
                        scratch.clear();
                        let end = sorted_value(t, value.start, depth + 1, members, &mut scratch)?;
                        if end != value.end {
                            return None;
                        }
                        continue;
                    }
                    if k > first && !out.ends_with('{') {
                        out.push(',');
                    }
                    push(out, key)?;
                    out.push(':');
                    let end = sorted_value(t, value.start, depth + 1, members, out)?;
                    if end != value.end {
                        return None;
                    }
                }
                members.truncate(first);
            }
            out.push(char::from(close));
            Some(j + 1)
        }
        b'"' => {
            let end = escape_free_string(b, i)?;
            push(out, i..end)?;
            Some(end)
        }
        b'-' | b'0'..=b'9' => {
            let negative = b[i] == b'-';
            let from = i + usize::from(negative);
            let end = from + b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
            let n = end - from;
            let fine = (1..=18).contains(&n)
                && (b[from] != b'0' || (n == 1 && !negative))
                && !matches!(b.get(end), Some(b'.' | b'e' | b'E'));
            fine.then(|| push(out, i..end)).flatten()?;
            Some(end)
        }
        _ => {
            let word: &[u8] = match b[i] {
                b't' => b"true",
                b'f' => b"false",
                b'n' => b"null",
                _ => return None,
            };
            b[i..]
                .starts_with(word)
                .then(|| push(out, i..i + word.len()))
                .flatten()?;
            Some(i + word.len())
        }
    }
}

/// A string from its opening quote at `i` that holds no backslash and no control character:
/// the index after its closing quote.
fn escape_free_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let len = b[i + 1..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    (b[i + 1 + len] == b'"').then_some(i + len + 2)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::call::lookup_in_map;

    /// What the map that `text` parses into holds at `path` (the reference for [`value_at`]).
    fn in_map(text: &str, path: &[&str]) -> Option<Value> {
        let map: Map<String, Value> = serde_json::from_str(text).expect("vouched text parses");
        lookup_in_map(&map, path).cloned()
    }

    fn at(text: &str, path: &[&str]) -> Option<Value> {
        let range = value_at(text, path).expect("vouched");
        range.map(|r| serde_json::from_str(&text[r]).expect("a value"))
    }

    /// Argument objects of small keys, so that paths hit, nest and repeat.
    fn object() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            (-1000.0f64..1000.0).prop_map(|f| json!((f * 100.0).round() / 100.0)),
            "[a-c \\\"é/]{0,6}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[ab\"é]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[ab\"é]{1,2}", value, 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
    /// The argument check never vouches for text serde_json refuses as an object.
    #[test]
    fn the_argument_check_is_never_wrong(text in "[{}\\[\\]\"a-c0-9.eE:, \\\\u\t\n-]{0,24}") {
        if object_certainly_parses(text.as_bytes()) {
            let parsed = serde_json::from_str::<Value>(&text);
            prop_assert!(matches!(parsed, Ok(Value::Object(_))), "{text:?}: {parsed:?}");
            // The Parquet reader and the table reader's shortcut keep such text as text
            // without the table reader's own check: both must take it the same way.
            prop_assert!(!text.starts_with('{') || crate::call::raw_object_parses(&text), "{text:?}");
        }
    }

    /// The same for perturbed objects: a valid one with one byte changed, inserted or removed.
    #[test]
    fn the_argument_check_is_never_wrong_on_near_misses(
        at in 0usize..60,
        op in 0u8..3,
        byte in proptest::sample::select(b"{}[]\",:\\ 0123456789.-eEtrufalsn\x01\x1f".to_vec()),
    ) {
        let base = r#"{"a":[1,-2.5,true,null,{"b":"c\"d"}],"e":"\u00e9","f":0}"#;
        let mut b = base.as_bytes().to_vec();
        let at = at.min(b.len());
        match op {
            0 if at < b.len() => b[at] = byte,
            1 => b.insert(at, byte),
            _ if at < b.len() => { b.remove(at); }
            _ => {}
        }
        if let Ok(text) = std::str::from_utf8(&b) {
            if object_certainly_parses(text.as_bytes()) {
                let parsed = serde_json::from_str::<Value>(text);
                prop_assert!(matches!(parsed, Ok(Value::Object(_))), "{text:?}: {parsed:?}");
                prop_assert!(!text.starts_with('{') || crate::call::raw_object_parses(text), "{text:?}");
            }
        }
    }

        /// Any text wrongly taken as checked gives some answer, never a panic.
        #[test]
        fn reading_any_text_as_checked_never_panics(text in "[{}\\[\\]\"a:, \\\\é1-]{0,24}") {
            let _ = value_in_checked(&text, &["a"]);
            let _ = value_in_checked(&text, &["a", "a"]);
        }

        /// The value found at a path is the one the parsed map holds there, in compact and
        /// spaced text.
        #[test]
        fn values_are_found_where_the_map_has_them(
            object in object(),
            path in prop::collection::vec(prop::sample::select(vec!["a", "b", "ab", "\"", "é", "x"]), 1..4),
            pretty in any::<bool>(),
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&object).expect("json")
            } else {
                serde_json::to_string(&object).expect("json")
            };
            // serde_json writes `é` as is and `"` escaped: both key forms are read.
            if let Some(range) = value_at(&text, &path) {
                let found = range.map(|r| serde_json::from_str::<Value>(&text[r]).expect("a value"));
                prop_assert_eq!(found, in_map(&text, &path), "{}", text);
            }
        }
    }

    proptest! {
        /// Flat objects (the usual arguments: one level of keys, no escapes), duplicate keys and
        /// values that look like keys included, are read as their map reads.
        #[test]
        fn flat_objects_are_read_as_their_map(
            members in prop::collection::vec(
                (
                    prop::sample::select(vec!["a", "b", "ab", "é", "a:", " a"]),
                    prop_oneof![
                        prop::sample::select(vec!["a", "ab", "a\\\":", ":", ""])
                            .prop_map(|s| format!("\"{s}\"")),
                        Just("1".to_string()),
                        Just("true".to_string()),
                        Just("null".to_string()),
                    ],
                ),
                0..6,
            ),
            spaced in any::<bool>(),
            want in prop::sample::select(vec!["a", "b", "ab", "é", "a:", " a", "x"]),
        ) {
            let sep = if spaced { " " } else { "" };
            let body: Vec<String> = (members.iter())
                .map(|(k, v)| format!("\"{k}\"{sep}:{sep}{v}"))
                .collect();
            let text = format!("{{{sep}{}{sep}}}", body.join(&format!("{sep},{sep}")));
            let found = value_at(&text, &[want]);
            let vouched = found.is_some();
            if let Some(range) = found {
                let value = range.map(|r| serde_json::from_str::<Value>(&text[r]).expect("a value"));
                prop_assert_eq!(value, in_map(&text, &[want]), "{}", text);
            }
            if !text.contains('\\') {
                prop_assert!(vouched, "{}", text);
            }
        }
    }

    #[test]
    fn only_keys_at_the_top_are_found() {
        let text = r#"{"x":"service","service":"ALL","y":"service","service" : 1 ,"z":"a"}"#;
        assert_eq!(at(text, &["service"]), Some(json!(1)));
        assert_eq!(at(r#"{"x":"service"}"#, &["service"]), None);
        assert_eq!(at(r#"{"service":"x"}"#, &["x"]), None);
        assert_eq!(at(r#"{"a":"b\"","b":2}"#, &["b"]), Some(json!(2)));
        // Nested objects are walked: a key inside one is not at the top.
        assert_eq!(at(r#"{"o":{"service":1}}"#, &["service"]), None);
        assert_eq!(
            at(r#"{"o":["service"],"service":2}"#, &["service"]),
            Some(json!(2))
        );
    }

    #[test]
    fn a_later_duplicate_key_replaces_an_earlier_one() {
        let text = r#"{"a":1,"b":{"c":2},"a":{"c":3},"b":4}"#;
        assert_eq!(at(text, &["a"]), Some(json!({"c": 3})));
        assert_eq!(at(text, &["a", "c"]), Some(json!(3)));
        assert_eq!(at(text, &["b", "c"]), None);
        assert_eq!(at(text, &["b"]), Some(json!(4)));
        assert_eq!(at(text, &["a"]), in_map(text, &["a"]));
    }

    #[test]
    fn keys_are_compared_with_escapes_decoded() {
        let text = r#"{"s\u0065rvice":"ALL","x\"y":[1, 2] ,"n" : -2.5 }"#;
        assert_eq!(at(text, &["service"]), Some(json!("ALL")));
        assert_eq!(at(text, &["x\"y"]), Some(json!([1, 2])));
        assert_eq!(at(text, &["n"]), Some(json!(-2.5)));
        assert_eq!(at(text, &["s\\u0065rvice"]), None);
        assert_eq!(at(text, &["n", "m"]), None);
        assert_eq!(at("{}", &["a"]), None);
    }

    /// Text wrongly taken as checked gives some answer, never a panic.
    #[test]
    fn unchecked_text_read_as_checked_does_not_panic() {
        for text in [
            "{",
            "{\"a",
            "{\"a\":",
            "{\"a\":[1,",
            "{\"a\":\"x",
            "{\"é\"",
            "{}}]",
            "{\"a\":}}",
        ] {
            let _ = value_in_checked(text, &["a", "b"]);
            let _ = value_in_checked(text, &["a"]);
        }
    }

    #[test]
    fn text_that_is_not_certainly_an_object_is_left_to_serde_json() {
        for text in [
            "[1]",
            r#"{"a":1e3}"#,
            r#"{"a":1,}"#,
            "",
            r#"{"a":"\ud83d\ude00"}"#,
        ] {
            assert_eq!(value_at(text, &["a"]), None, "{text}");
        }
    }

    #[test]
    fn the_argument_check_vouches_for_ordinary_objects() {
        for ok in [
            "{}",
            r#"{"vdom":"root","filter":"action==accept"}"#,
            r#" {"a" : [ 1 , -2.5 , 0 ] , "b" : { } } "#,
            r#"{"s":"\" \\ \/ \b \f \n \r \t \u00e9"}"#,
            r#"{"t":true,"f":false,"n":null,"e":"é"}"#,
        ] {
            assert!(object_certainly_parses(ok.as_bytes()), "{ok}");
        }
        for unsure in [
            "[]",
            "",
            r#"{"n":1e3}"#,
            r#"{"s":"\ud83d\ude00"}"#,
            r#"{"a":1,}"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            assert!(!object_certainly_parses(unsure.as_bytes()), "{unsure}");
        }
    }

    /// A JSON value as text, written with whitespace of `ws` (cycled) between tokens, members
    /// in the order given (repeated keys included).
    #[derive(Debug, Clone)]
    enum Doc {
        Obj(Vec<(String, Doc)>),
        Arr(Vec<Doc>),
        Text(String),
        Int(i64),
        Float(f64),
        Word(&'static str),
    }

    impl Doc {
        fn write(&self, ws: &[&str], n: &mut usize, out: &mut String) {
            fn gap(ws: &[&str], n: &mut usize, out: &mut String) {
                out.push_str(ws[*n % ws.len()]);
                *n += 1;
            }
            match self {
                Doc::Obj(members) => {
                    out.push('{');
                    for (k, (key, value)) in members.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        gap(ws, n, out);
                        out.push_str(&serde_json::to_string(key).unwrap());
                        gap(ws, n, out);
                        out.push(':');
                        gap(ws, n, out);
                        value.write(ws, n, out);
                        gap(ws, n, out);
                    }
                    out.push('}');
                }
                Doc::Arr(items) => {
                    out.push('[');
                    for (k, item) in items.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        gap(ws, n, out);
                        item.write(ws, n, out);
                    }
                    gap(ws, n, out);
                    out.push(']');
                }
                Doc::Text(t) => out.push_str(&serde_json::to_string(t).unwrap()),
                Doc::Int(i) => out.push_str(&i.to_string()),
                Doc::Float(f) => out.push_str(&format!("{f:?}")),
                Doc::Word(w) => out.push_str(w),
            }
        }

        /// Whether the text holds only what [`write_sorted`] writes itself.
        fn plain(&self) -> bool {
            match self {
                Doc::Obj(m) => m.iter().all(|(k, v)| plain_text(k) && v.plain()),
                Doc::Arr(a) => a.iter().all(Doc::plain),
                Doc::Text(t) => plain_text(t),
                Doc::Int(i) => i.unsigned_abs() < 1_000_000_000_000_000_000,
                Doc::Float(_) => false,
                Doc::Word(_) => true,
            }
        }
    }

    fn plain_text(t: &str) -> bool {
        !t.contains(['"', '\\']) && !t.chars().any(char::is_control)
    }

    fn doc() -> impl Strategy<Value = Doc> {
        let key = "[ab !\"é\\\n]{0,2}";
        let leaf = prop_oneof![
            Just(Doc::Word("null")),
            Just(Doc::Word("true")),
            Just(Doc::Word("false")),
            any::<i64>().prop_map(Doc::Int),
            (-99i64..99).prop_map(Doc::Int),
            (-1e6f64..1e6).prop_map(Doc::Float),
            "[a-c /é\"\\\t]{0,5}".prop_map(Doc::Text),
        ];
        let value = leaf.prop_recursive(4, 24, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Doc::Arr),
                prop::collection::vec((key, inner), 0..4).prop_map(Doc::Obj),
            ]
        });
        prop::collection::vec((key, value), 0..5).prop_map(Doc::Obj)
    }

    /// What serde_json writes for the map `text` parses into.
    fn serde_sorted(text: &str) -> Option<String> {
        serde_json::from_str::<Map<String, Value>>(text)
            .ok()
            .map(|m| serde_json::to_string(&m).unwrap())
    }

    proptest! {
        /// Argument text written sorted is what serde_json writes for its map, whatever the
        /// whitespace, the order of keys and their repeats; text without escapes and fractions
        /// is always written so.
        #[test]
        fn text_is_written_sorted_as_serde_json_writes_its_map(
            d in doc(),
            ws in prop::sample::select(vec![vec![""], vec![" "], vec!["", " ", "\n  ", "\t"]]),
        ) {
            let mut text = String::new();
            d.write(&ws, &mut 0, &mut text);
            let mut out = String::from("kept");
            let written = write_sorted(&text, &mut out);
            if written {
                let reference = serde_sorted(&text);
                prop_assert_eq!(Some(&out[4..]), reference.as_deref(), "{}", text);
            } else {
                prop_assert_eq!(&out, "kept");
            }
            prop_assert!(written || !d.plain(), "not written: {}", text);
        }

        /// Text that is not JSON is never written.
        #[test]
        fn text_written_sorted_is_json(text in "[{}\\[\\]\"a-b0-9.e:, \\\\-]{0,24}") {
            let mut out = String::new();
            if write_sorted(&text, &mut out) {
                prop_assert_eq!(Some(out), serde_sorted(&text), "{}", text);
            }
        }
    }

    #[test]
    fn text_is_written_sorted_only_when_plain() {
        for (text, sorted) in [
            (
                r#"{"b":1,"a":{"d":[1, {"z":0,"y":-7}],"c":"x"}}"#,
                r#"{"a":{"c":"x","d":[1,{"y":-7,"z":0}]},"b":1}"#,
            ),
            (r#" { "a" : 1 , "a" : 2 } "#, r#"{"a":2}"#),
            (
                r#"{"é":"ü","e":null,"E":true}"#,
                r#"{"E":true,"e":null,"é":"ü"}"#,
            ),
            ("{}", "{}"),
        ] {
            let mut out = String::new();
            assert!(write_sorted(text, &mut out), "{text}");
            assert_eq!(out, sorted);
            assert_eq!(serde_sorted(text).as_deref(), Some(sorted));
        }
        // Fractions, exponents, escapes, `-0`, long integers: left to serde_json. Not JSON or
        // not an object: nothing.
        for text in [
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":"\n"}"#,
            r#"{"a":-0}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":01}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,"a":x}"#,
            r#"{"a":1}x"#,
            r#"{"a" 1}"#,
            "[1]",
            "{\"a\":\"\u{1}\"}",
        ] {
            let mut out = String::new();
            assert!(!write_sorted(text, &mut out), "{text}");
            assert!(out.is_empty());
        }
    }
}
