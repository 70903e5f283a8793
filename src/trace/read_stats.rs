//! What a read saw besides the calls: skipped lines, ignored messages, per-file counts.

use std::collections::BTreeMap;

use super::Format;
use super::pairing::Replies;

/// How many examples of skipped records are kept.
pub const MAX_EXAMPLES: usize = 10;

/// Counters collected while reading; final once [`super::Trace::next_call`] returned `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadStats {
    /// Calls yielded.
    pub calls: u64,
    /// Calls whose timestamp is earlier than an earlier call of the same file (they were sorted).
    pub out_of_order: u64,
    /// Bad records skipped.
    pub skipped: u64,
    /// Skipped records by reason category (`invalid JSON`, `missing field`, …).
    pub skipped_by_reason: BTreeMap<String, u64>,
    /// The first 10 skipped records.
    pub skipped_examples: Vec<Skipped>,
    /// Lines that are not calls and were not bad, by kind (`method initialize`, …).
    pub ignored: BTreeMap<String, u64>,
    /// How replies paired with requests, in recordings that have replies.
    pub replies: Option<Replies>,
    /// Per input file: display name, format, calls read.
    pub per_file: Vec<(String, Format, u64)>,
}

/// One skipped record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Display name of the input.
    pub file: String,
    /// 1-based line (or row) number.
    pub line: u64,
    /// Why it was skipped, e.g. ``field `ts`: cannot parse "yesterday" as a timestamp``.
    pub reason: String,
}

impl ReadStats {
    /// Add the skipped and ignored lines another read of the same input counted.
    pub(crate) fn absorb(&mut self, other: ReadStats) {
        self.skipped += other.skipped;
        for (reason, n) in other.skipped_by_reason {
            *self.skipped_by_reason.entry(reason).or_insert(0) += n;
        }
        let room = MAX_EXAMPLES.saturating_sub(self.skipped_examples.len());
        self.skipped_examples
            .extend(other.skipped_examples.into_iter().take(room));
        for (kind, n) in other.ignored {
            *self.ignored.entry(kind).or_insert(0) += n;
        }
        if let Some(r) = other.replies {
            self.replies.get_or_insert_with(Replies::default).absorb(r);
        }
    }

    pub(crate) fn ignore(&mut self, kind: impl Into<String>) {
        *self.ignored.entry(kind.into()).or_insert(0) += 1;
    }
}

impl ReadStats {
    /// The warnings every report shows: skipped records (count, reasons, first examples) and
    /// how many calls were out of order. Empty when there is nothing to warn about.
    pub fn warning_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.skipped > 0 {
            let reasons: Vec<String> = self
                .skipped_by_reason
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect();
            lines.push(format!(
                "skipped {} bad record{} ({})",
                self.skipped,
                if self.skipped == 1 { "" } else { "s" },
                reasons.join(", ")
            ));
            for s in &self.skipped_examples {
                lines.push(format!("  {}:{}: {}", s.file, s.line, s.reason));
            }
            if self.skipped > self.skipped_examples.len() as u64 {
                lines.push(format!(
                    "  ... and {} more",
                    self.skipped - self.skipped_examples.len() as u64
                ));
            }
        }
        if let Some(r) = &self.replies {
            lines.extend(r.warning_lines());
        }
        if self.out_of_order > 0 {
            lines.push(format!(
                "{} call{} out of timestamp order within {} file; sorted before use",
                self.out_of_order,
                if self.out_of_order == 1 {
                    " was"
                } else {
                    "s were"
                },
                if self.out_of_order == 1 {
                    "its"
                } else {
                    "their"
                },
            ));
        }
        lines
    }
}
