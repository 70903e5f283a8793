//! Markdown, fit for a pull-request comment.

use std::io::{self, Write};

use super::document::{Block, Document};

pub fn write(doc: &Document, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "### {}", escape(&doc.title))?;
    let mut prev_line = false;
    for block in &doc.blocks {
        // Blocks are separated by one blank line; consecutive lines stay together, each ending
        // in a hard line break.
        let is_line = matches!(block, Block::Line(_));
        if !(prev_line && is_line) {
            writeln!(out)?;
        }
        prev_line = is_line;
        match block {
            Block::Heading(h) => writeln!(out, "#### {}", escape(h))?,
            Block::Line(l) => writeln!(out, "{}  ", escape(l))?,
            Block::Table { header, rows } => {
                write_row(out, header)?;
                let rule: Vec<String> = header.iter().map(|_| "---".to_owned()).collect();
                write_row(out, &rule)?;
                for row in rows {
                    let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
                    write_row(out, &cells)?;
                }
            }
        }
    }
    Ok(())
}

fn write_row(out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
    writeln!(out, "| {} |", cells.join(" | "))
}

/// Keep cell text from breaking the table or being read as Markdown. Underscores are left alone:
/// tool names are full of them and GitHub does not emphasise inside words.
fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '*' | '`' | '<' | '>' | '[' | ']' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            _ => o.push(c),
        }
    }
    o
}
