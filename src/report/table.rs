//! Terminal tables (tabled).

use std::io::{self, Write};

use tabled::builder::Builder;
use tabled::settings::Style;

use super::document::{Block, Document};

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
                writeln!(out, "{t}")?;
            }
        }
    }
    Ok(())
}
