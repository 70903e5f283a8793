//! A checked cursor over one line of JSON, for the column readers' hand-written line scanners.
//!
//! The scanners take only the usual shape of a line and leave anything else to the general
//! code (see [`super::jsonl_batch`]): every method returns `None` when it is not sure, never a
//! verdict on the line.

use serde_json::Value;

use super::Nanos;
use super::time::{parse_ts_str, parse_ts_value};

/// Nesting the scanner follows inside a line; deeper values go to the general code (whose JSON
/// parser has a limit of its own).
const MAX_DEPTH: u32 = 64;

/// A cursor over one line's text.
pub(super) struct Scanner<'a> {
    pub(super) s: &'a str,
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Scanner<'a> {
    /// A cursor inside the object that `text` starts with, its brace eaten; `None` when it
    /// starts with anything else.
    pub(super) fn object(text: &'a str) -> Option<Scanner<'a>> {
        let mut sc = Scanner {
            s: text,
            b: text.as_bytes(),
            pos: 0,
        };
        sc.ws();
        sc.eat(b'{')?;
        Some(sc)
    }

    /// Only whitespace is left.
    #[inline]
    pub(super) fn end(&mut self) -> Option<()> {
        self.ws();
        (self.pos == self.b.len()).then_some(())
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// JSON whitespace (not every ASCII space: a form feed is an error).
    #[inline]
    pub(super) fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    pub(super) fn lit(&mut self, word: &[u8]) -> Option<()> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    /// The members of an object, its brace eaten. For each, `key` reads the key (its opening
    /// quote eaten) into a bit, 0 for a key it does not know; a known key twice is refused.
    /// Then `value` reads the value of the key of that bit.
    #[inline]
    pub(super) fn members(
        &mut self,
        mut key: impl FnMut(&mut Self) -> Option<u16>,
        mut value: impl FnMut(&mut Self, u16) -> Option<()>,
    ) -> Option<()> {
        let mut seen = 0u16;
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.eat(b'"')?;
            let bit = key(self)?;
            // A repeated key: the last one counts in a map; the general code sorts that out.
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.ws();
            self.eat(b':')?;
            self.ws();
            value(self, bit)?;
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The rest of a key without escapes, the opening quote eaten, as `bit` names it (0 for a
    /// key the caller does not read). Tried first as the key the usual shape of a line has
    /// here: `order[*next]`, then the one after it (a key that is often missing), each one
    /// comparison of sixteen bytes; else the key is read, and a `match` on its bytes in `bit`
    /// compiles to a switch on its length and a few word comparisons. `*next` moves past the
    /// key read when `order` holds it. The bits of `order` are those `bit` gives their keys (a
    /// test of each order holds them to it).
    #[inline]
    pub(super) fn key_in_order(
        &mut self,
        order: &[Expected],
        next: &mut usize,
        bit: impl Fn(&[u8]) -> u16,
    ) -> Option<u16> {
        if let Some(ahead) = self.b.get(self.pos..self.pos + 16) {
            let word = u128::from_le_bytes(ahead.try_into().ok()?);
            for (i, e) in order.iter().enumerate().skip(*next).take(2) {
                if word & e.mask == e.word {
                    self.pos += e.key.len() + 1;
                    *next = i + 1;
                    return Some(e.bit);
                }
            }
        }
        self.key_out_of_order(order, next, bit)
    }

    /// [`Scanner::key_in_order`] past the keys it tried first.
    #[inline(never)]
    fn key_out_of_order(
        &mut self,
        order: &[Expected],
        next: &mut usize,
        bit: impl Fn(&[u8]) -> u16,
    ) -> Option<u16> {
        let key = self.plain_str()?.as_bytes();
        if let Some(i) = order.iter().position(|e| e.key == key) {
            *next = i + 1;
        }
        Some(bit(key))
    }

    /// The rest of a string without escapes, the opening quote eaten.
    #[inline]
    pub(super) fn plain_str(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let end = find_special(self.b, start)?;
        // Both ends next to quotes, as the callers promise; checked, which costs less than the
        // checks and panic paths of slicing a `str` (5% of the JSONL summary's instructions).
        if self.b[end] != b'"' || self.b.get(start.wrapping_sub(1)) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        // SAFETY: the bytes at `start - 1` and `end` are quotes, ASCII, so `start` and `end`
        // are character boundaries of `s`; `find_special` gives `start <= end < s.len()`.
        Some(unsafe { self.s.get_unchecked(start..end) })
    }

    /// Skip the rest of any valid string, the opening quote eaten. Escapes are checked as a
    /// parser building strings checks them; an escaped surrogate is left to that parser.
    pub(super) fn skip_str(&mut self) -> Option<()> {
        loop {
            let i = find_special(self.b, self.pos)?;
            match self.b[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Some(());
                }
                b'\\' => match *self.b.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos = i + 2,
                    b'u' => {
                        let hex = self.b.get(i + 2..i + 6)?;
                        let mut n = 0u32;
                        for &c in hex {
                            n = n * 16 + char::from(c).to_digit(16)?;
                        }
                        if (0xD800..=0xDFFF).contains(&n) {
                            return None;
                        }
                        self.pos = i + 6;
                    }
                    _ => return None,
                },
                // A control character.
                _ => return None,
            }
        }
    }

    /// A name: a string without escapes, or `null` (absent).
    #[inline]
    pub(super) fn name(&mut self) -> Option<Option<&'a str>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.plain_str().map(Some)
            }
            _ => self.lit(b"null").map(|()| None),
        }
    }

    /// The timestamp; `Some(None)` for `null` (missing).
    pub(super) fn ts(&mut self) -> Option<Option<Nanos>> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                let s = self.plain_str()?;
                parse_ts_str(s).ok().map(Some)
            }
            b'n' => self.lit(b"null").map(|()| None),
            _ => {
                let start = self.pos;
                self.number(true)?;
                let n: serde_json::Number = serde_json::from_str(&self.s[start..self.pos]).ok()?;
                parse_ts_value(&Value::Number(n)).ok().map(Some)
            }
        }
    }

    /// A request id: any string, a plain number, or `null` (`(0, 0)`); its range in the line.
    pub(super) fn id(&mut self) -> Option<(usize, usize)> {
        let start = self.pos;
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.skip_str()?;
            }
            b'n' => return self.lit(b"null").map(|()| (0, 0)),
            _ => self.number(false)?,
        }
        Some((start, self.pos))
    }

    /// A number as JSON writes it. Without `exponent`, only numbers that every parse turns into
    /// a finite value: no exponent, no digit run longer than 200.
    pub(super) fn number(&mut self, exponent: bool) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek()? {
            // A leading zero stands alone (a digit after it fails at the caller).
            b'0' => self.pos += 1,
            b'1'..=b'9' => self.digits()?,
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            if !exponent {
                return None;
            }
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek()?.is_ascii_digit() {
                return None;
            }
            self.digits()?;
        }
        Some(())
    }

    /// A run of digits of at most 200.
    #[inline]
    pub(super) fn digits(&mut self) -> Option<()> {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        (self.pos - start <= 200).then_some(())
    }

    /// Skip any JSON value, checked; `depth` is the number of enclosing arrays and objects.
    pub(super) fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.skip_str()
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.eat(b'"')?;
                    self.skip_str()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' => self.lit(b"true"),
            b'f' => self.lit(b"false"),
            b'n' => self.lit(b"null"),
            _ => self.number(false),
        }
    }
}

/// A key a scanner expects at some place of a line ([`Scanner::key_in_order`]), and its bit.
pub(super) struct Expected {
    key: &'static [u8],
    bit: u16,
    /// The key and its closing quote as the first bytes of a little-endian word, and the mask
    /// of those bytes.
    word: u128,
    mask: u128,
}

impl Expected {
    /// `key`: fewer than sixteen bytes, none of them a quote, a backslash or a control
    /// character (checked as the constant is built).
    pub(super) const fn new(key: &'static [u8], bit: u16) -> Expected {
        assert!(key.len() < 16);
        let mut word = 0u128;
        let mut i = 0;
        while i < key.len() {
            assert!(key[i] != b'"' && key[i] != b'\\' && key[i] >= 0x20);
            word |= (key[i] as u128) << (8 * i);
            i += 1;
        }
        word |= (b'"' as u128) << (8 * key.len());
        let mask = if key.len() == 15 {
            u128::MAX
        } else {
            (1u128 << (8 * (key.len() + 1))) - 1
        };
        Expected {
            key,
            bit,
            word,
            mask,
        }
    }

    /// The key and its bit.
    #[cfg(test)]
    pub(super) fn pair(&self) -> (&'static [u8], u16) {
        (self.key, self.bit)
    }
}

/// Whether JSON needs an escape for any of `bytes` (a quote, a backslash or a control
/// character: the bytes serde_json escapes).
#[inline]
pub fn needs_escape(bytes: &[u8]) -> bool {
    // Sixteen bytes at a time, the last few padded with a byte that needs none: most strings of
    // a report are shorter than sixteen bytes.
    let mut blocks = bytes.chunks_exact(16);
    let mut hit = 0;
    for block in &mut blocks {
        hit |= special_mask(block.try_into().expect("sixteen bytes"));
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut block = [b'a'; 16];
        block[..rest.len()].copy_from_slice(rest);
        hit |= special_mask(&block);
    }
    hit != 0
}

/// The position of the first `"`, `\` or control character at or after `from`.
#[inline]
pub(super) fn find_special(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    // Sixteen bytes at a time (most strings end within the first sixteen, so one branch).
    while let Some(block) = b.get(i..i + 16) {
        let hits = special_mask(block.try_into().ok()?);
        if hits != 0 {
            return Some(i + hits.trailing_zeros() as usize);
        }
        i += 16;
    }
    b.get(i..)?
        .iter()
        .position(|&c| is_special(c))
        .map(|p| i + p)
}

/// A quote, a backslash or a control character.
#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// A bit for each of sixteen bytes that [`is_special`] (bit 0 for the first byte).
#[cfg(target_arch = "x86_64")]
#[inline]
fn special_mask(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 processor, and the unaligned load reads exactly the
    // sixteen bytes of `block`.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Below 0x20, unsigned: the byte is its own minimum with 0x1f.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), control)) as u32
    }
}

/// [`special_mask`] a byte at a time, where SSE2 is not at hand.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn special_mask(block: &[u8; 16]) -> u32 {
    (block.iter().enumerate())
        .filter(|&(_, &c)| is_special(c))
        .fold(0, |m, (k, _)| m | 1 << k)
}

/// Eight bytes as a little-endian word.
#[inline]
pub(super) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// Edits of a line for the scanners' property tests: at a place (an index into the line and
/// one past it), remove the byte (0), insert `byte` (1) or overwrite with it (2).
#[cfg(test)]
pub(super) fn edit(line: &mut Vec<u8>, edits: Vec<(proptest::sample::Index, u8, u8)>) {
    for (at, op, byte) in edits {
        let i = at.index(line.len() + 1);
        match op {
            0 if i < line.len() => {
                line.remove(i);
            }
            1 => line.insert(i, byte),
            _ if i < line.len() => line[i] = byte,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Scanner;

    fn at(text: &str, pos: usize) -> Scanner<'_> {
        Scanner {
            s: text,
            b: text.as_bytes(),
            pos,
        }
    }

    #[test]
    fn a_plain_string_is_read_only_from_after_its_opening_quote() {
        let mut sc = at(r#"{"é":1}"#, 2);
        assert_eq!(sc.plain_str(), Some("é"));
        assert_eq!(sc.pos, 5);
        // Not after a quote (here inside a character): left to the general code, no panic.
        assert_eq!(at(r#"{"é":1}"#, 3).plain_str(), None);
        assert_eq!(at(r#"ab""#, 0).plain_str(), None);
        // An escape or a control character before the closing quote: not a plain string.
        assert_eq!(at(r#""a\"b""#, 1).plain_str(), None);
        assert_eq!(at("\"a\tb\"", 1).plain_str(), None);
    }
}
