//! JSON objects written member by member into a byte buffer: exactly the bytes serde_json writes
//! for a derived `Serialize` of the same members, without serde's byte-by-byte escape loop over
//! strings that need no escapes (most of the time per-call JSON output and `convert --to jsonl`
//! spent writing). Users hold their output to serde_json's in tests.

use serde::Serialize;

use super::scan::needs_escape;

/// A JSON object being written, as serde_json writes one: no whitespace.
pub(crate) struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonObject<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> JsonObject<'a> {
        out.push(b'{');
        JsonObject { out, first: true }
    }

    /// Start a member; `key` is its name as written, quoted and with its colon (`"ts":`).
    /// Its value comes next.
    pub(crate) fn key(&mut self, key: &[u8]) -> &mut Vec<u8> {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(b',');
        }
        self.out.extend_from_slice(key);
        self.out
    }

    pub(crate) fn str(&mut self, key: &[u8], value: &str) {
        string(self.key(key), value);
    }

    /// A string, or `null` for `None`.
    pub(crate) fn opt_str(&mut self, key: &[u8], value: Option<&str>) {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    pub(crate) fn null(&mut self, key: &[u8]) {
        self.key(key).extend_from_slice(b"null");
    }

    pub(crate) fn bool(&mut self, key: &[u8], value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        self.key(key).extend_from_slice(text);
    }

    /// Any value (a number, a list, an object) as serde_json writes it.
    pub(crate) fn value(&mut self, key: &[u8], value: &impl Serialize) {
        // Writing to a vector cannot fail, and these values always serialise.
        let _ = serde_json::to_writer(self.key(key), value);
    }

    pub(crate) fn end(self) {
        self.out.push(b'}');
    }
}

/// A JSON string: copied between quotes when nothing in it needs an escape (a quote, a
/// backslash or a control character, the bytes serde_json escapes), else written by serde_json.
fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        let _ = serde_json::to_writer(out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}
