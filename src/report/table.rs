//! Terminal tables (tabled).

use std::io::{self, Write};

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Style, Width};

use super::document::{Block, Document};

/// The widest a cell gets before its text wraps onto more lines (at word boundaries where it
/// can): long messages and rule ids stay readable in a terminal. Markdown and the machine
/// formats keep them whole.
const MAX_CELL: usize = 60;

pub fn write(doc: &Document, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", doc.title)?;
    for block in &doc.blocks {
        match block {
            Block::Heading(h) => write!(out, "\n{h}\n")?,
            Block::Line(l) => writeln!(out, "{l}")?,
            Block::Table { header, rows } => {
                let mut b = Builder::default();
                b.push_record(header.iter().map(String::as_str));
                for row in rows {
                    b.push_record(row.iter().map(String::as_str));
                }
                let mut t = b.build();
                t.with(Style::sharp());
                t.modify(Columns::new(..), Width::wrap(MAX_CELL).keep_words(true));
                writeln!(out, "{t}")?;
            }
        }
    }
    Ok(())
}
