//! The outcome of `mcpsim test`: a summary for people, JUnit XML for CI test reporters, JSON.

use std::io::{self, Write};

use super::{Outcome, Status, Totals};

/// For people: a line per test, then each failure with its diff, then the totals.
pub fn human(outcomes: &[Outcome], out: &mut dyn Write) -> io::Result<()> {
    let mut file = None;
    for o in outcomes {
        if file != Some(&o.file) {
            writeln!(out, "{}", o.file)?;
            file = Some(&o.file);
        }
        let status = match o.status {
            Status::Passed => "ok",
            Status::Failed => "FAILED",
            Status::Error => "ERROR",
        };
        writeln!(out, "  {status:<7} {} {}", o.kind, o.name)?;
    }
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != Status::Passed)
        .collect();
    if !bad.is_empty() {
        writeln!(out, "\nfailures:")?;
    }
    for o in &bad {
        let at = if o.line > 0 {
            format!("{}:{}", o.file, o.line)
        } else {
            o.file.clone()
        };
        writeln!(out, "\n--- {} `{}` ({at})", o.kind, o.name)?;
        if let Some(m) = &o.message {
            writeln!(out, "{m}")?;
        }
        if let Some(s) = &o.snapshot {
            writeln!(out, "snapshot: {s}")?;
        }
        if let Some(d) = &o.diff {
            write!(out, "{d}")?;
        }
        if let Some(p) = &o.pending {
            writeln!(out, "wrote {p} for review")?;
        }
    }
    let t = Totals::of(outcomes);
    writeln!(
        out,
        "\ntest result: {}. {} passed, {} failed, {} error{}",
        if t.exit_code() == 0 { "ok" } else { "FAILED" },
        t.passed,
        t.failed,
        t.errors,
        if t.errors == 1 { "" } else { "s" }
    )?;
    if outcomes.iter().any(|o| o.pending.is_some()) {
        writeln!(
            out,
            "review the .new files, then accept them with `mcpsim test --accept` (same paths)"
        )?;
    }
    Ok(())
}

/// JUnit XML: a test suite per file, a test case per test; no timings, so the bytes depend on
/// the outcome only.
pub fn junit(outcomes: &[Outcome], out: &mut dyn Write) -> io::Result<()> {
    let t = Totals::of(outcomes);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="mcpsim test" tests="{}" failures="{}" errors="{}">"#,
        outcomes.len(),
        t.failed,
        t.errors
    )?;
    let mut i = 0;
    while i < outcomes.len() {
        let file = &outcomes[i].file;
        let group: Vec<&Outcome> = outcomes[i..]
            .iter()
            .take_while(|o| &o.file == file)
            .collect();
        i += group.len();
        let g = Totals::of(group.iter().copied());
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="{}">"#,
            attr(file),
            group.len(),
            g.failed,
            g.errors
        )?;
        for o in group {
            let open = format!(
                r#"    <testcase classname="{}" name="{}" file="{}" line="{}""#,
                attr(&o.file),
                attr(&format!("{} {}", o.kind, o.name)),
                attr(&o.file),
                o.line
            );
            let tag = match o.status {
                Status::Passed => {
                    writeln!(out, "{open}/>")?;
                    continue;
                }
                Status::Failed => "failure",
                Status::Error => "error",
            };
            writeln!(out, "{open}>")?;
            let mut body = String::new();
            if let Some(s) = &o.snapshot {
                body.push_str(&format!("snapshot: {s}\n"));
            }
            if let Some(d) = &o.diff {
                body.push_str(d);
            }
            writeln!(
                out,
                r#"      <{tag} message="{}">{}</{tag}>"#,
                attr(o.message.as_deref().unwrap_or_default()),
                xml(&body)
            )?;
            writeln!(out, "    </testcase>")?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// One JSON document: the totals and every test.
pub fn json(outcomes: &[Outcome], out: &mut dyn Write) -> io::Result<()> {
    let t = Totals::of(outcomes);
    let doc = serde_json::json!({
        "passed": t.passed,
        "failed": t.failed,
        "errors": t.errors,
        "tests": outcomes,
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// Text for XML attributes and content; characters XML 1.0 cannot hold become U+FFFD.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Text for an XML attribute: line breaks and tabs kept as character references (a parser
/// turns literal ones into spaces).
fn attr(s: &str) -> String {
    xml(s)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}
