//! Window arithmetic shared by every policy dialect: fixed UTC-aligned windows and the exact
//! sliding log.

use std::collections::VecDeque;

use crate::call::Nanos;

/// Nanoseconds in one second.
pub(crate) const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The longest numeric window accepted (100 years of 365 days), so that window lengths in
/// nanoseconds never overflow.
pub(crate) const MAX_WINDOW_SECS: u64 = 100 * 365 * 86_400;

/// Length of a window, in seconds. Calendar units are multiples of a second because UTC
/// minutes, hours and days (without leap seconds, as Unix time counts them) start at multiples
/// of 60, 3600 and 86400 seconds since the epoch.
pub(crate) fn unit_seconds(unit: &str) -> Option<u64> {
    match unit {
        "second" => Some(1),
        "minute" => Some(60),
        "hour" => Some(3_600),
        "day" => Some(86_400),
        _ => None,
    }
}

/// Length of a window of `secs` seconds in nanoseconds. `secs` is at most [`MAX_WINDOW_SECS`].
pub(crate) fn window_nanos(secs: u64) -> Nanos {
    (secs.min(MAX_WINDOW_SECS) as i64) * NANOS_PER_SEC
}

/// Start of the fixed window of length `len` (ns, > 0) that holds `ts`: the largest multiple of
/// `len` not after `ts`. Windows are half-open `[start, start + len)`, so a call at exactly a
/// boundary opens the new window.
pub(crate) fn fixed_window_start(ts: Nanos, len: Nanos) -> Nanos {
    ts.div_euclid(len).checked_mul(len).unwrap_or(ts)
}

/// End (exclusive) of the fixed window starting at `start`: the instant the window resets.
pub(crate) fn fixed_window_end(start: Nanos, len: Nanos) -> Nanos {
    start.saturating_add(len)
}

/// Exact sliding log: what admitted calls consumed in `(t - len, t]`.
///
/// The sum is recomputed front to back whenever entries expire and extended by plain addition
/// otherwise, so it equals summing the live entries in time order (no drift from subtracting).
#[derive(Debug, Clone, Default)]
pub(crate) struct SlidingLog {
    entries: VecDeque<(Nanos, f64)>,
    sum: f64,
}

impl SlidingLog {
    /// Drop entries that are at least one window old at `ts` (an entry at exactly `ts - len`
    /// no longer counts).
    pub(crate) fn expire(&mut self, ts: Nanos, len: Nanos) {
        let cutoff = ts.saturating_sub(len);
        let mut dropped = false;
        while let Some(&(t, _)) = self.entries.front() {
            if t <= cutoff {
                self.entries.pop_front();
                dropped = true;
            } else {
                break;
            }
        }
        if dropped {
            self.sum = self.entries.iter().fold(0.0, |acc, &(_, a)| acc + a);
        }
    }

    /// What the live entries add up to (call [`SlidingLog::expire`] first).
    pub(crate) fn used(&self) -> f64 {
        self.sum
    }

    /// What [`SlidingLog::used`] would say after expiring at `ts`, without expiring.
    pub(crate) fn used_at(&self, ts: Nanos, len: Nanos) -> f64 {
        let cutoff = ts.saturating_sub(len);
        let mut live = self
            .entries
            .iter()
            .skip_while(|&&(t, _)| t <= cutoff)
            .peekable();
        if live.peek().map(|e| e.0) == self.entries.front().map(|e| e.0) {
            // Nothing expires: the running sum is exactly what `used` returns.
            return self.sum;
        }
        live.fold(0.0, |acc, &(_, a)| acc + a)
    }

    /// Whether no entry counts at `ts` or after: the log is then as good as a new one.
    pub(crate) fn lapsed(&self, ts: Nanos, len: Nanos) -> bool {
        self.entries
            .back()
            .is_none_or(|&(t, _)| t <= ts.saturating_sub(len))
    }

    /// Record an admitted amount at `ts`.
    pub(crate) fn push(&mut self, ts: Nanos, amount: f64) {
        self.entries.push_back((ts, amount));
        self.sum += amount;
    }

    /// The first instant at which `increment` would fit under `max`, as entries expire one by
    /// one. When it never fits from expiry alone (increment above max), one window from `ts`.
    pub(crate) fn retry_after(&self, ts: Nanos, len: Nanos, increment: f64, max: f64) -> Nanos {
        let mut remaining = self.sum;
        for &(t, a) in &self.entries {
            remaining -= a;
            if remaining + increment <= max {
                return t.saturating_add(len);
            }
        }
        ts.saturating_add(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows_are_half_open_and_epoch_aligned() {
        let min = window_nanos(60);
        assert_eq!(fixed_window_start(0, min), 0);
        assert_eq!(fixed_window_start(min - 1, min), 0);
        assert_eq!(fixed_window_start(min, min), min);
        assert_eq!(fixed_window_start(-1, min), -min);
        assert_eq!(fixed_window_end(min, min), 2 * min);
    }

    #[test]
    fn sliding_log_expires_entries_exactly_one_window_old() {
        let len = window_nanos(10);
        let mut log = SlidingLog::default();
        log.push(0, 1.0);
        log.push(5 * NANOS_PER_SEC, 2.0);
        log.expire(len - 1, len);
        assert_eq!(log.used(), 3.0);
        log.expire(len, len);
        assert_eq!(log.used(), 2.0);
        assert_eq!(log.retry_after(len, len, 1.0, 2.0), 15 * NANOS_PER_SEC);
    }
}
