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

pub fn write(doc: Document, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", doc.title)?;
    for block in doc.blocks {
        match block {
            Block::Heading(h) => write!(out, "\n{h}\n")?,
            Block::Line(l) => writeln!(out, "{l}")?,
            Block::Table { header, rows } => {
                // Cells move into the table (a report of a million grants is a million rows).
                let wide = rows
                    .iter()
                    .flatten()
                    .chain(&header)
                    .any(|c| c.chars().count() > MAX_CELL);
                let mut b = Builder::with_capacity(rows.len() + 1, header.len());
                b.push_record(header);
                for row in rows {
                    b.push_record(row);
                }
                let mut t = b.build();
                t.with(Style::sharp());
                if wide {
                    t.modify(Columns::new(..), Width::wrap(MAX_CELL).keep_words(true));
                }
                writeln!(out, "{t}")?;
            }
        }
    }
    Ok(())
}
