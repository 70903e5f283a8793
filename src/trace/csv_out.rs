//! CSV rows written cell by cell into a byte buffer: the one CSV writer of the project
//! (`convert --to csv` and per-call CSV reports). The bytes are those polars' CSV writer writes
//! with its default options, which earlier releases used: a comma between cells, `\n` after each
//! row, a null cell empty, an empty text `""`, a text quoted only when it holds a comma, a quote
//! (doubled inside) or a line end, numbers as their shortest exact text. A property test holds
//! it to polars.

/// Whether a text must be quoted: it holds a quote, a comma or a line end. One pass without
/// branches, which the compiler turns into vector compares (most cells are short names, where
/// two searches cost more than the bytes).
#[inline]
fn must_quote(b: &[u8]) -> bool {
    b.iter().fold(false, |hit, &c| {
        hit | ((c == b'"') | (c == b',') | (c == b'\n') | (c == b'\r'))
    })
}

/// One CSV row being written.
pub(crate) struct CsvRow<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> CsvRow<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> CsvRow<'a> {
        CsvRow { out, first: true }
    }

    /// Start a cell.
    fn cell(&mut self) -> &mut Vec<u8> {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push(b',');
        }
        self.out
    }

    /// A text cell; `None` is null (nothing between the commas).
    pub(crate) fn text(&mut self, cell: Option<&str>) {
        let out = self.cell();
        let Some(s) = cell else { return };
        let b = s.as_bytes();
        if b.is_empty() {
            // Told apart from a null.
            out.extend_from_slice(b"\"\"");
            return;
        }
        if !must_quote(b) {
            out.extend_from_slice(b);
            return;
        }
        out.push(b'"');
        let mut rest = b;
        while let Some(i) = memchr::memchr(b'"', rest) {
            out.extend_from_slice(&rest[..=i]);
            out.push(b'"');
            rest = &rest[i + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    }

    pub(crate) fn int(&mut self, n: u64) {
        use std::io::Write as _;
        // Writing to a vector cannot fail.
        let _ = write!(self.cell(), "{n}");
    }

    /// A number cell; `None` is null. Non-finite values are written `NaN`, `inf`, `-inf`.
    pub(crate) fn float(&mut self, x: Option<f64>) {
        let out = self.cell();
        if let Some(x) = x {
            let mut text = zmij::Buffer::new();
            out.extend_from_slice(text.format(x).as_bytes());
        }
    }

    pub(crate) fn bool(&mut self, b: bool) {
        let text: &[u8] = if b { b"true" } else { b"false" };
        self.cell().extend_from_slice(text);
    }

    /// End the row.
    pub(crate) fn end(self) {
        self.out.push(b'\n');
    }

    /// A header row naming `columns`.
    pub(crate) fn header<S: AsRef<str>>(columns: &[S], out: &mut Vec<u8>) {
        let mut row = CsvRow::new(out);
        for c in columns {
            row.text(Some(c.as_ref()));
        }
        row.end();
    }
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;
    use proptest::prelude::*;

    use super::*;

    /// Text with what CSV must quote (commas, quotes, line ends), spaces, and other scripts.
    fn text() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![
            Just(String::new()),
            "[a-c ,\"\r\n\t;'é中]{0,8}",
            any::<String>(),
        ])
    }

    fn float() -> impl Strategy<Value = Option<f64>> {
        prop::option::of(prop_oneof![
            any::<f64>(),
            (0u32..100_000).prop_map(f64::from),
            (0i64..1_000_000).prop_map(|n| n as f64 / 10.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(1e16),
            Just(1e-7),
        ])
    }

    proptest! {
        /// Rows of every kind of cell, and the header, are the bytes polars' CSV writer writes
        /// for a data frame of the same columns.
        #[test]
        fn rows_are_written_as_polars_writes_them(
            names in prop::collection::vec("[a-z_ ,\"]{1,6}", 4),
            rows in prop::collection::vec(
                (text(), any::<u64>(), float(), any::<bool>(), text()),
                0..30,
            ),
        ) {
            // Polars refuses repeated column names.
            let mut names = names;
            for (i, n) in names.iter_mut().enumerate() {
                n.push_str(&i.to_string());
            }
            // A text column first and last: a cell at either end of a row.
            let mut cols: Vec<&str> = names.iter().map(String::as_str).collect();
            cols.push("last");
            let mut ours = Vec::new();
            CsvRow::header(&cols, &mut ours);
            for (t, n, x, b, last) in &rows {
                let mut row = CsvRow::new(&mut ours);
                row.text(t.as_deref());
                row.int(*n);
                row.float(*x);
                row.bool(*b);
                row.text(last.as_deref());
                row.end();
            }
            let column = |i: usize| PlSmallStr::from(cols[i]);
            let mut df = DataFrame::new_infer_height(vec![
                Column::new(column(0), rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>()),
                Column::new(column(1), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
                Column::new(column(2), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
                Column::new(column(3), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
                Column::new(column(4), rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>()),
            ])
            .unwrap();
            let mut theirs = Vec::new();
            CsvWriter::new(&mut theirs).finish(&mut df).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
            prop_assert!(ours == theirs);
        }
    }

    #[test]
    fn cells_are_quoted_only_when_they_must_be() {
        let mut out = Vec::new();
        let mut row = CsvRow::new(&mut out);
        row.text(Some("plain"));
        row.text(None);
        row.text(Some(""));
        row.text(Some("a,b"));
        row.text(Some("say \"hi\""));
        row.text(Some("two\nlines"));
        row.float(Some(30.0));
        row.float(Some(0.1));
        row.float(None);
        row.int(7);
        row.bool(false);
        row.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain,,\"\",\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",30.0,0.1,,7,false\n"
        );
    }
}
