//! Policy errors and warnings, located by file, line, column and JSON path, and rendered the way
//! a compiler shows them.

use std::fmt;
use std::io::{self, Write};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The policy cannot be used.
    Error,
    /// The policy works but probably not as intended.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, in one sentence (`unknown field `limts`, did you mean `limits`?`).
    pub message: String,
    /// Where in the document (`tools.vpn.limits[0].max`); empty for the document itself.
    pub json_path: String,
    /// 1-based line; 0 when the problem has no position (the file could not be read).
    pub line: usize,
    /// 1-based column in characters; 0 when the problem has no position.
    pub column: usize,
}

impl Diagnostic {
    pub(crate) fn error(
        message: impl Into<String>,
        json_path: &str,
        line: usize,
        column: usize,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            json_path: json_path.to_string(),
            line,
            column,
        }
    }

    pub(crate) fn warning(
        message: impl Into<String>,
        json_path: &str,
        line: usize,
        column: usize,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message, json_path, line, column)
        }
    }
}

/// Every error (and warning) found in one policy file. Loading fails with this as soon as the
/// file holds one error; all errors of the file are in it, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors {
    /// The file name as given.
    pub file: String,
    /// The errors, in file order.
    pub errors: Vec<Diagnostic>,
    /// The warnings, in file order.
    pub warnings: Vec<Diagnostic>,
}

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} error{}",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for d in &self.errors {
            write!(f, "\n  {}", d.message)?;
            if d.line > 0 {
                write!(f, " ({}:{}:{}", self.file, d.line, d.column)?;
                if !d.json_path.is_empty() {
                    write!(f, ", at {}", d.json_path)?;
                }
                f.write_str(")")?;
            }
        }
        Ok(())
    }
}

/// The most characters of a source line shown under a diagnostic.
const WINDOW: usize = 120;

/// Write diagnostics like a compiler: the message, the location, the source line with a caret
/// under the column, and the JSON path.
///
/// ```text
/// error: unknown field `limts`, did you mean `limits`?
///   --> policy.json:14:7
///    |
/// 14 |       "limts": [
///    |       ^
///    = at tools.vpn_ipsec_phase2_create.limts
/// ```
pub fn render_diagnostics(
    src: &str,
    file: &str,
    diags: &[Diagnostic],
    out: &mut dyn Write,
) -> io::Result<()> {
    // Split once: a file may have thousands of diagnostics.
    let lines: Vec<&str> = if diags.is_empty() {
        Vec::new()
    } else {
        src.lines().collect()
    };
    for d in diags {
        writeln!(out, "{}: {}", d.severity.as_str(), d.message)?;
        let text = if d.line > 0 {
            lines.get(d.line - 1).copied()
        } else {
            None
        };
        let gutter = d.line.to_string().len();
        let pad = " ".repeat(gutter);
        if d.line > 0 {
            writeln!(out, "{pad}--> {file}:{}:{}", d.line, d.column)?;
        } else {
            writeln!(out, "{pad}--> {file}")?;
        }
        if let Some(text) = text {
            let text = text.trim_end_matches('\r').trim_start_matches('\u{feff}');
            // Tabs would shift the caret by a terminal-dependent amount; show them as spaces.
            // A long line (a minified policy is one) is shown around the column only.
            let column = d.column.saturating_sub(1);
            let chars = text.chars().count();
            let first = if chars <= WINDOW {
                0
            } else {
                column.saturating_sub(WINDOW / 2).min(chars - WINDOW)
            };
            let mut shown: String = text
                .chars()
                .skip(first)
                .take(WINDOW)
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let mut caret = column.saturating_sub(first);
            if first > 0 {
                shown.insert(0, '…');
                caret += 1;
            }
            if chars > first + WINDOW {
                shown.push('…');
            }
            writeln!(out, "{pad} |")?;
            writeln!(out, "{} | {shown}", d.line)?;
            writeln!(out, "{pad} | {}^", " ".repeat(caret))?;
        }
        if !d.json_path.is_empty() {
            writeln!(out, "{pad} = at {}", d.json_path)?;
        }
        writeln!(out)?;
    }
    Ok(())
}
