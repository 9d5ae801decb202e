//! Numbers and times as the pages write them.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

/// 1234567 → "1,234,567".
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A time in words for a tooltip: `2026-11-27 14:00 UTC`.
pub(super) fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A time as a table shows it: in UTC in the markup and its tooltip; the page's script
/// rewrites the text in the browser's own time zone (the tooltip keeps UTC).
pub(super) fn moment(t: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(t.to_rfc3339_opts(SecondsFormat::Secs, true)) title=(when(t)) { (when(t)) }
    }
}

/// A duration as a person reads it: `0.42 ms`, `56 ms`, `1.25 s`, `2 min 5 s`.
pub(super) fn duration(delta: chrono::TimeDelta) -> String {
    let micros = delta.num_microseconds().unwrap_or(i64::MAX).max(0);
    if micros < 10_000 {
        let text = format!("{:.2}", micros as f64 / 1000.0);
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text} ms")
    } else if micros < 1_000_000 {
        format!("{} ms", (micros + 500) / 1000)
    } else if micros < 60_000_000 {
        format!("{:.2} s", micros as f64 / 1_000_000.0)
    } else {
        let seconds = micros / 1_000_000;
        format!("{} min {} s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::{duration, thousands};

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        let micros = chrono::TimeDelta::microseconds;
        assert_eq!(duration(micros(0)), "0 ms");
        assert_eq!(duration(micros(420)), "0.42 ms");
        assert_eq!(duration(micros(7_000)), "7 ms");
        assert_eq!(duration(micros(56_000)), "56 ms");
        assert_eq!(duration(micros(56_600)), "57 ms");
        assert_eq!(duration(micros(1_250_000)), "1.25 s");
        assert_eq!(duration(micros(125_000_000)), "2 min 5 s");
        assert_eq!(duration(micros(-5)), "0 ms");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(50_000), "50,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
