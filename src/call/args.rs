//! What a trace recorded of a call's arguments.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::json_text::{value_at, value_in_checked};

/// What a trace recorded of a call's arguments.
///
/// Equality compares what was recorded, not how it is held: `Raw` text equals the `Values`
/// map it parses to.
#[derive(Debug, Clone, Default)]
pub enum Args {
    /// The full argument object.
    Values(Map<String, Value>),
    /// Only the top-level keys (gateway logs that never store values).
    Keys(Vec<String>),
    /// Nothing at all (a hash, or no field).
    #[default]
    Unrecorded,
    /// The full argument object, kept as the JSON text it was read from: the evaluator reads
    /// the paths its rules name straight from the text ([`Args::lookup`]), and a map is built
    /// only when something needs all of it (building a map per call dominated replay time).
    Raw(RawArgs),
    /// Arguments that were recorded but are not a JSON object (a list, a string, a number),
    /// kept as their JSON text. No path resolves in them: a gateway that reads arguments as an
    /// object cannot read these (the Intercept gateway forwards such calls unevaluated).
    NotObject(Box<str>),
}

/// The JSON text of an argument object, read a path at a time or parsed into its map on first
/// use of [`RawArgs::map`].
#[derive(Debug, Clone)]
pub struct RawArgs {
    text: Box<str>,
    /// Whether writers copy the text as read (else they write its map: keys sorted, compact).
    verbatim: bool,
    /// Whether a reader's own checks found the text certainly an object serde_json parses, so
    /// that paths are read without checking the whole text again.
    checked: bool,
    // Boxed so that `Args`, and with it every `CallRecord`, stays as small as before.
    parsed: OnceLock<Option<Box<Map<String, Value>>>>,
}

impl Args {
    /// About how many bytes of text the arguments take (a map's is not worked out: readers
    /// keep arguments as text).
    pub(crate) fn text_len(&self) -> usize {
        match self {
            Args::Raw(raw) => raw.text().len(),
            Args::NotObject(text) => text.len(),
            Args::Keys(keys) => keys.iter().map(|k| k.len() + 3).sum(),
            Args::Values(_) | Args::Unrecorded => 0,
        }
    }
}

impl RawArgs {
    /// Keep `text`, which the caller has already checked to be a JSON object that
    /// [`serde_json`] parses into a map (see [`raw_object_parses`]). Text that does not parse
    /// anyway reads as unrecorded arguments rather than failing later.
    pub fn new(text: impl Into<Box<str>>) -> RawArgs {
        RawArgs {
            text: text.into(),
            verbatim: true,
            checked: false,
            parsed: OnceLock::new(),
        }
    }

    /// The same arguments, marked as text a reader's checks found certainly to be an object
    /// that [`serde_json`] parses into a map: paths are then read without checking all of it
    /// again.
    pub(crate) fn checked(mut self) -> RawArgs {
        self.checked = true;
        self
    }

    /// [`RawArgs::new`] for arguments that writers write as their map (keys sorted, no
    /// whitespace), the way mcpsim has always written the arguments of a recording's
    /// messages.
    pub fn normalised(text: impl Into<Box<str>>) -> RawArgs {
        RawArgs {
            verbatim: false,
            ..RawArgs::new(text)
        }
    }

    /// Whether writers copy the text as read.
    pub fn verbatim(&self) -> bool {
        self.verbatim
    }

    /// The JSON text as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The argument map, parsed on the first call.
    pub fn map(&self) -> Option<&Map<String, Value>> {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.text).ok().map(Box::new))
            .as_deref()
    }
}

/// Whether `text`, already known to be syntactically valid JSON, is an object that
/// [`serde_json`] will also turn into a map. Syntax checks that skip values accept numbers a
/// map parse rejects as out of range, so text with a number that has an exponent or more than
/// 200 digits is refused here (callers then parse it at once, which reports such numbers as
/// before); strings may hold anything. A refusal is only ever a missed shortcut, never a wrong
/// answer.
pub fn raw_object_parses(text: &str) -> bool {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return false;
    }
    // Branch-free over the bytes, following strings by their quotes and escapes (in valid
    // JSON a backslash only stands in a string): ids such as `"3e9f…"` are common in arguments.
    let (mut in_str, mut escaped, mut after_number, mut bad) = (false, false, false, false);
    let mut run = 0u32;
    for &c in b {
        let quote = (c == b'"') & !escaped;
        escaped = in_str & (c == b'\\') & !escaped;
        in_str ^= quote;
        let digit = c.is_ascii_digit() & !in_str;
        bad |= after_number & (c | 0x20 == b'e');
        run = (run + 1) * u32::from(digit);
        bad |= run > 200;
        after_number = digit | ((c == b'.') & !in_str);
    }
    !bad
}

/// A borrowed look at recorded arguments, with raw text resolved to its map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgsView<'a> {
    /// The full argument object.
    Values(&'a Map<String, Value>),
    /// Only the top-level keys.
    Keys(&'a [String]),
    /// Nothing recorded.
    Unrecorded,
    /// Recorded arguments that are not an object, as JSON text.
    NotObject(&'a str),
}

impl Args {
    /// The argument object, when values were recorded.
    pub fn values(&self) -> Option<&Map<String, Value>> {
        match self.view() {
            ArgsView::Values(m) => Some(m),
            _ => None,
        }
    }

    /// What was recorded, raw text parsed (once) into its map.
    pub fn view(&self) -> ArgsView<'_> {
        match self {
            Args::Values(m) => ArgsView::Values(m),
            Args::Keys(k) => ArgsView::Keys(k),
            Args::Unrecorded => ArgsView::Unrecorded,
            Args::Raw(r) => match r.map() {
                Some(m) => ArgsView::Values(m),
                None => ArgsView::Unrecorded,
            },
            Args::NotObject(text) => ArgsView::NotObject(text),
        }
    }
}

/// What recorded arguments say about the value at one path of object keys.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgLookup<'a> {
    /// Values were recorded: the value at the path, `None` when the path does not resolve
    /// (a key is absent or a step is not an object).
    Value(Option<Cow<'a, Value>>),
    /// Only top-level keys were recorded: whether the path's first key is among them.
    TopKey(bool),
    /// Nothing was recorded, or raw text that does not parse into an object.
    Unrecorded,
}

impl Args {
    /// The value at `path` (object keys from the top), read without building the argument
    /// map: raw text is scanned, values off the path are checked but not built, and only the
    /// value at the path is parsed. The answer is the one a lookup in [`Args::view`]'s map
    /// gives, duplicate keys (the last one counts) and invalid text (unrecorded) included.
    pub fn lookup<K: AsRef<str>>(&self, path: &[K]) -> ArgLookup<'_> {
        match self {
            Args::Values(map) => ArgLookup::Value(lookup_in_map(map, path).map(Cow::Borrowed)),
            Args::Keys(keys) => ArgLookup::TopKey(
                path.first()
                    .is_some_and(|top| keys.iter().any(|k| k == top.as_ref())),
            ),
            Args::Unrecorded | Args::NotObject(_) => ArgLookup::Unrecorded,
            Args::Raw(raw) => match raw.parsed.get() {
                // Someone already needed the whole map: read it.
                Some(Some(map)) => ArgLookup::Value(lookup_in_map(map, path).map(Cow::Borrowed)),
                Some(None) => ArgLookup::Unrecorded,
                None => match raw.lookup(path) {
                    Some(value) => ArgLookup::Value(value.map(Cow::Owned)),
                    None => ArgLookup::Unrecorded,
                },
            },
        }
    }
}

/// Recorded arguments as the evaluator reads them: a call's [`Args`], or the JSON text of an
/// argument object borrowed from where a reader holds it, so that a call whose arguments a
/// rule reads needs no copy of them.
#[derive(Debug, Clone, Copy)]
pub enum ArgsRef<'a> {
    /// Arguments as a record holds them.
    Args(&'a Args),
    /// The text of an object a reader checked to be one that [`serde_json`] parses into a map
    /// (what [`Args::Raw`] holds once [`RawArgs::checked`]).
    Text(&'a str),
}

/// Arguments not recorded, for a call whose arguments nothing reads.
static UNRECORDED: Args = Args::Unrecorded;

impl<'a> ArgsRef<'a> {
    /// Nothing recorded.
    pub fn unrecorded() -> ArgsRef<'static> {
        ArgsRef::Args(&UNRECORDED)
    }

    /// [`Args::lookup`].
    pub fn lookup<K: AsRef<str>>(self, path: &[K]) -> ArgLookup<'a> {
        match self {
            ArgsRef::Args(args) => args.lookup(path),
            ArgsRef::Text(text) => match text_lookup(text, true, path) {
                Some(value) => ArgLookup::Value(value.map(Cow::Owned)),
                None => ArgLookup::Unrecorded,
            },
        }
    }

    /// Whether arguments were recorded that are not an object ([`Args::NotObject`]).
    pub fn is_not_object(self) -> bool {
        matches!(self, ArgsRef::Args(Args::NotObject(_)))
    }

    /// The arguments as a record holds them.
    pub fn to_args(self) -> Args {
        match self {
            ArgsRef::Args(args) => args.clone(),
            ArgsRef::Text(text) => Args::Raw(RawArgs::new(text).checked()),
        }
    }
}

impl<'a> From<&'a Args> for ArgsRef<'a> {
    fn from(args: &'a Args) -> ArgsRef<'a> {
        ArgsRef::Args(args)
    }
}

/// Walk `map` along `path`; `None` when a key is absent or a step is not an object.
pub(crate) fn lookup_in_map<'v, K: AsRef<str>>(
    map: &'v Map<String, Value>,
    path: &[K],
) -> Option<&'v Value> {
    let (first, rest) = path.split_first()?;
    let mut cur = map.get(first.as_ref())?;
    for k in rest {
        cur = cur.as_object()?.get(k.as_ref())?;
    }
    Some(cur)
}

impl RawArgs {
    /// The value at `path` in the text, parsed alone; the outer `None` when the text does not
    /// parse into a map (what [`RawArgs::map`] would refuse).
    fn lookup<K: AsRef<str>>(&self, path: &[K]) -> Option<Option<Value>> {
        text_lookup(&self.text, self.checked, path)
    }
}

/// [`RawArgs::lookup`] in `text` (`checked`: a reader found it certainly an object that
/// [`serde_json`] parses into a map).
fn text_lookup<K: AsRef<str>>(text: &str, checked: bool, path: &[K]) -> Option<Option<Value>> {
    // Usual text is walked by hand, and only the value found is parsed.
    let found = if checked {
        Some(value_in_checked(text, path))
    } else {
        value_at(text, path)
    };
    match found {
        Some(None) => return Some(None),
        Some(Some(range)) => {
            let value = text.get(range).map(|raw| match simple_value(raw) {
                Some(value) => Ok(value),
                None => serde_json::from_str(raw),
            });
            if let Some(Ok(value)) = value {
                return Some(Some(value));
            }
        }
        None => {}
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // The top level goes through `deserialize_map`, as a map parse does, so that text
    // that is not an object fails the same way; below it, a non-object is a miss.
    let found = de
        .deserialize_map(Find { path, top: true })
        .and_then(|found| de.end().map(|()| found));
    found.ok()
}

/// The value a JSON text holds when it is a string without escapes or control characters, or
/// `true`, `false` or `null`: what [`serde_json`] parses it to, without its parser (rules most
/// often compare such values). `None` for anything else, parsed by `serde_json` then.
fn simple_value(raw: &str) -> Option<Value> {
    match raw.as_bytes() {
        [b'"', inner @ .., b'"'] if !inner.iter().any(|&c| c == b'\\' || c == b'"' || c < 0x20) => {
            Some(Value::String(raw[1..raw.len() - 1].to_owned()))
        }
        b"true" => Some(Value::Bool(true)),
        b"false" => Some(Value::Bool(false)),
        b"null" => Some(Value::Null),
        _ => None,
    }
}

/// Finds the value at `path` in an object, checking everything else as a map parse does but
/// building nothing. Every step goes through [`serde_json`]'s own `deserialize_any`, so what
/// is accepted (numbers in range, string escapes, nesting depth) is exactly what a map parse
/// accepts.
struct Find<'p, K> {
    path: &'p [K],
    top: bool,
}

impl<'de, K: AsRef<str>> DeserializeSeed<'de> for Find<'_, K> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, K: AsRef<str>> Visitor<'de> for Find<'_, K> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Value>, A::Error> {
        let Some((want, rest)) = self.path.split_first() else {
            Skip.visit_map(map)?;
            return Ok(None);
        };
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(want.as_ref()))? {
            // Later duplicates replace earlier ones, as in the map.
            found = if !hit {
                map.next_value::<Skip>()?;
                continue;
            } else if rest.is_empty() {
                Some(map.next_value::<Value>()?)
            } else {
                map.next_value_seed(Find {
                    path: rest,
                    top: false,
                })?
            };
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Value>, A::Error> {
        self.miss(Skip::drain(seq), de::Unexpected::Seq)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Value>, E> {
        self.miss(Ok(Skip), de::Unexpected::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Value>, E> {
        self.miss(Ok(Skip), de::Unexpected::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Value>, E> {
        self.miss(Ok(Skip), de::Unexpected::Unsigned(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Value>, E> {
        self.miss(Ok(Skip), de::Unexpected::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Value>, E> {
        self.miss(Ok(Skip), de::Unexpected::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Value>, E> {
        self.miss(Ok(Skip), de::Unexpected::Unit)
    }
}

impl<K> Find<'_, K> {
    /// A value that is not an object: a miss below the top, an error at it.
    fn miss<E: de::Error>(
        &self,
        checked: Result<Skip, E>,
        what: de::Unexpected<'_>,
    ) -> Result<Option<Value>, E> {
        checked?;
        if self.top {
            Err(E::invalid_type(what, &"a JSON object"))
        } else {
            Ok(None)
        }
    }
}

/// Whether an object key equals the wanted one (escapes decoded, as the map's keys are).
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// Any JSON value, checked as a map parse checks it and then dropped without being built.
/// (Serde's `IgnoredAny` would let serde_json skip without the checks: out-of-range numbers
/// and too-deep nesting would then pass where a map parse fails.)
pub(crate) struct Skip;

impl Skip {
    fn drain<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
}

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
        Skip::drain(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

impl PartialEq for Args {
    fn eq(&self, other: &Args) -> bool {
        match (self, other) {
            (Args::Raw(a), Args::Raw(b)) if a.text == b.text => true,
            _ => self.view() == other.view(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_equals_the_map_it_parses_to() {
        let raw = Args::Raw(RawArgs::new(r#"{"b": [1, {"c": null}], "a": "x"}"#));
        let values = serde_json::json!({"a": "x", "b": [1, {"c": null}]});
        let Value::Object(map) = values else {
            panic!("an object");
        };
        assert_eq!(raw, Args::Values(map.clone()));
        assert_eq!(Args::Values(map.clone()), raw);
        assert_eq!(raw.values(), Some(&map));
        assert_ne!(raw, Args::Values(Map::new()));
        assert_ne!(raw, Args::Unrecorded);
        assert_eq!(
            raw,
            Args::Raw(RawArgs::new(r#"{"a":"x","b":[1,{"c":null}]}"#))
        );
        assert_ne!(
            raw,
            Args::Raw(RawArgs::new(r#"{"a":"y","b":[1,{"c":null}]}"#))
        );
    }

    #[test]
    fn only_plain_objects_are_vouched_for() {
        assert!(raw_object_parses(r#"{"a":"e1","b":[1.5,-2],"c":{}}"#));
        assert!(raw_object_parses(r#"{"name":"tree"}"#));
        assert!(raw_object_parses(
            r#"{"id":"3f2e9","n":"1E5","q":"\"1e","7e":"\\"}"#
        ));
        assert!(!raw_object_parses(r#"{"a":"\\","n":1e3}"#));
        assert!(!raw_object_parses(r#"{"a":"\"","n":[2E1]}"#));
        assert!(!raw_object_parses("[1]"));
        assert!(!raw_object_parses(r#""{}""#));
        assert!(!raw_object_parses(r#"{"n":1e400}"#));
        assert!(!raw_object_parses(r#"{"n":1.E3}"#));
        let long = format!(r#"{{"n":{}}}"#, "9".repeat(400));
        assert!(!raw_object_parses(&long));
        for run in [199, 200, 201, 202, 299, 300, 301] {
            for pad in 0..3 {
                let text = format!(r#"{{"{}":{}}}"#, "k".repeat(pad), "7".repeat(run));
                assert_eq!(raw_object_parses(&text), run <= 200, "{run} {pad}");
            }
        }
    }

    proptest::proptest! {
        /// The check equals its plain definition: outside strings (from a quote to the next
        /// one not escaped by a backslash), no `e` or `E` after a digit or a dot, and no run of
        /// more than 200 digits.
        #[test]
        fn the_vouching_check_is_its_definition(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    "[0-9]{0,120}",
                    "[eE.a\"\\\\{} ,:-]{0,3}",
                ],
                0..12,
            ),
        ) {
            let text = format!("{{{}", parts.concat());
            let mut expected = true;
            let (mut in_str, mut escaped, mut after_number, mut run) = (false, false, false, 0);
            for c in text.bytes() {
                if in_str {
                    if escaped {
                        escaped = false;
                    } else if c == b'\\' {
                        escaped = true;
                    } else if c == b'"' {
                        in_str = false;
                    }
                    (after_number, run) = (false, 0);
                    continue;
                }
                if c == b'"' {
                    (in_str, after_number, run) = (true, false, 0);
                    continue;
                }
                run = if c.is_ascii_digit() { run + 1 } else { 0 };
                if run > 200 || (matches!(c, b'e' | b'E') && after_number) {
                    expected = false;
                }
                after_number = c.is_ascii_digit() || c == b'.';
            }
            proptest::prop_assert_eq!(raw_object_parses(&text), expected, "{}", text);
        }

        /// Objects of strings (digits, letters `e`, quotes and backslashes among them) and
        /// integers, as serde_json writes them, are vouched for, and parse.
        #[test]
        fn objects_without_exponents_are_vouched_for(
            object in proptest::collection::btree_map(
                "[a-e0-9\"\\\\.]{0,8}",
                proptest::prop_oneof![
                    proptest::strategy::Strategy::prop_map("[0-9eE.\"\\\\ ]{0,12}", Value::String),
                    proptest::strategy::Strategy::prop_map(
                        proptest::prelude::any::<i64>(),
                        Value::from,
                    ),
                ],
                0..6,
            ),
        ) {
            let text = serde_json::to_string(&object).expect("json");
            proptest::prop_assert!(raw_object_parses(&text), "{}", text);
            proptest::prop_assert!(serde_json::from_str::<Map<String, Value>>(&text).is_ok());
        }
    }

    /// The map-based answer [`Args::lookup`] must give: parse the whole text, walk the map.
    fn by_map<'a>(args: &'a Args, path: &[&str]) -> ArgLookup<'a> {
        match args.view() {
            ArgsView::Values(map) => ArgLookup::Value(lookup_in_map(map, path).map(Cow::Borrowed)),
            ArgsView::Keys(keys) => {
                ArgLookup::TopKey(path.first().is_some_and(|p| keys.iter().any(|k| k == p)))
            }
            ArgsView::Unrecorded | ArgsView::NotObject(_) => ArgLookup::Unrecorded,
        }
    }

    fn raw_lookup<'a>(text: &str, path: &[&str]) -> ArgLookup<'a> {
        owned(Args::Raw(RawArgs::new(text)).lookup(path))
    }

    /// [`raw_lookup`] of text a reader vouched for.
    fn checked_lookup<'a>(text: &str, path: &[&str]) -> ArgLookup<'a> {
        owned(Args::Raw(RawArgs::new(text).checked()).lookup(path))
    }

    fn owned(found: ArgLookup<'_>) -> ArgLookup<'static> {
        match found {
            ArgLookup::Value(v) => ArgLookup::Value(v.map(|v| Cow::Owned(v.into_owned()))),
            ArgLookup::TopKey(b) => ArgLookup::TopKey(b),
            ArgLookup::Unrecorded => ArgLookup::Unrecorded,
        }
    }

    fn mapped<'a>(text: &str, path: &[&str]) -> ArgLookup<'a> {
        match by_map(&Args::Raw(RawArgs::new(text)), path) {
            ArgLookup::Value(v) => ArgLookup::Value(v.map(|v| Cow::Owned(v.into_owned()))),
            ArgLookup::TopKey(b) => ArgLookup::TopKey(b),
            ArgLookup::Unrecorded => ArgLookup::Unrecorded,
        }
    }

    #[test]
    fn raw_lookup_reads_what_the_map_holds() {
        let cases: &[(&str, &[&str])] = &[
            (r#"{"a":1,"a":2}"#, &["a"]),
            (r#"{"a":{"b":1},"a":5}"#, &["a", "b"]),
            (r#"{"a":{"b":1},"a":{"c":2}}"#, &["a", "c"]),
            (r#"{"a\u0062":"x"}"#, &["ab"]),
            (r#"{"a":[1,{"b":2}],"b":{"c":[[]]}}"#, &["b", "c"]),
            (r#"{"a":[1,{"b":2}]}"#, &["a", "b"]),
            (r#"{"n":1e400,"a":1}"#, &["a"]),
            (r#"{"n":"\ud800","a":1}"#, &["a"]),
            (r#"{"a":1} x"#, &["a"]),
            (r#"{"a":1}  "#, &["a"]),
            ("[1]", &["a"]),
            ("{\"a\":\"tab\tin\"}", &["a"]),
            (r#"{"a":01}"#, &["a"]),
            (r#"{"a":-0.5e-3,"b":18446744073709551616}"#, &["b"]),
            (r#"{"a":"x",}"#, &["a"]),
            ("", &["a"]),
        ];
        for (text, path) in cases {
            assert_eq!(
                raw_lookup(text, path),
                mapped(text, path),
                "{text} {path:?}"
            );
        }
        assert_eq!(
            raw_lookup(r#"{"a\u0062":{"c":[1,2]}}"#, &["ab", "c"]),
            ArgLookup::Value(Some(Cow::Owned(serde_json::json!([1, 2]))))
        );
        // Nesting as deep as a map parse allows, and one level deeper.
        for depth in [120, 126, 127, 128, 129, 200] {
            let text = format!(
                r#"{{"a":1,"d":{}{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            assert_eq!(
                raw_lookup(&text, &["a"]),
                mapped(&text, &["a"]),
                "depth {depth}"
            );
        }
    }

    /// A JSON value whose objects may repeat keys, rendered as text.
    #[derive(Debug, Clone)]
    enum Node {
        Scalar(&'static str),
        Array(Vec<Node>),
        Object(Vec<(usize, bool, Node)>),
    }

    const KEYS: [&str; 4] = ["a", "b", "ab", "c"];
    const SCALARS: [&str; 12] = [
        "null",
        "true",
        "false",
        "0",
        "-1.5",
        "1e3",
        "1e400",
        "18446744073709551616",
        r#""x""#,
        r#""a\"b""#,
        r#""\u00e9""#,
        r#""""#,
    ];

    fn render(node: &Node, out: &mut String) {
        match node {
            Node::Scalar(s) => out.push_str(s),
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    render(item, out);
                }
                out.push(']');
            }
            Node::Object(entries) => {
                out.push('{');
                for (i, (k, escaped, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let key = KEYS[*k];
                    if *escaped {
                        // The first character as a \u escape: the same key to a map parse.
                        out.push_str(&format!("\"\\u{:04x}{}\":", key.as_bytes()[0], &key[1..]));
                    } else {
                        out.push_str(&format!("\"{key}\":"));
                    }
                    render(v, out);
                }
                out.push('}');
            }
        }
    }

    fn node() -> impl proptest::strategy::Strategy<Value = Node> {
        use proptest::prelude::*;
        let leaf = (0..SCALARS.len()).prop_map(|i| Node::Scalar(SCALARS[i]));
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Node::Array),
                proptest::collection::vec((0..KEYS.len(), any::<bool>(), inner), 0..5)
                    .prop_map(Node::Object),
            ]
        })
    }

    /// JSON-ish texts around the shapes [`simple_value`] reads: quoted text with and without
    /// escapes, quotes and control characters; bare words; near-literals.
    fn simple_raw() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "\"[a-zé \"\\\\\u{0}-\u{1f}\u{7f}\u{2028}]{0,8}\"",
            "[a-z\"\\\\ ]{0,6}",
            proptest::sample::select(vec!["true", "false", "null", "tru", "nulll", " true", "1"])
                .prop_map(str::to_owned),
        ]
    }

    proptest::proptest! {
        /// What the value shortcut reads is what serde_json parses, and it reads every string
        /// without escapes or control characters (so the test cannot pass by reading nothing).
        #[test]
        fn simple_values_read_as_serde_json_reads_them(raw in simple_raw()) {
            let parsed = serde_json::from_str::<Value>(&raw).ok();
            match simple_value(&raw) {
                Some(v) => proptest::prop_assert_eq!(Some(v), parsed),
                None => {
                    let inner = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"'));
                    let plain = inner.is_some_and(|i| {
                        !i.bytes().any(|c| c == b'\\' || c == b'"' || c < 0x20)
                    });
                    proptest::prop_assert!(!plain, "{:?} left to serde_json", raw);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn raw_lookup_agrees_with_the_map_on_random_objects(
            entries in proptest::collection::vec((0..KEYS.len(), proptest::bool::ANY, node()), 0..6),
            path in proptest::collection::vec(0..KEYS.len(), 1..4),
            cut in proptest::option::of(0usize..200),
        ) {
            let mut text = String::new();
            render(&Node::Object(entries), &mut text);
            if let Some(cut) = cut {
                // Sometimes break the text: truncate it (at a character boundary).
                let mut at = cut.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            let path: Vec<&str> = path.iter().map(|&i| KEYS[i]).collect();
            proptest::prop_assert_eq!(raw_lookup(&text, &path), mapped(&text, &path), "{}", text);
            // Text a reader's check vouches for reads the same when marked as checked.
            if crate::call::object_certainly_parses(text.as_bytes()) {
                proptest::prop_assert_eq!(checked_lookup(&text, &path), mapped(&text, &path), "{}", text);
                // And so does the same text borrowed from a reader's batch.
                proptest::prop_assert_eq!(owned(ArgsRef::Text(&text).lookup(&path)), mapped(&text, &path), "{}", text);
            }
        }
    }
}
