//! Sizes and durations worded exactly as Docker's `go-units` words them (`docker ps`,
//! `docker images`, `docker system prune`), since scripts and people compare the text.

const SECOND: i64 = 1_000_000_000;
const HOUR: i64 = 3600 * SECOND;

/// go-units' `HumanSize`: decimal units (kB = 1000 B), up to four significant digits.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// go-units' `HumanDuration` of `nanos` nanoseconds ("Up 5 seconds", "Exited (0) 3 hours
/// ago"). Seconds and minutes are truncated but hours are rounded to the nearest, as Go's
/// `d.Round(time.Hour)` does, and years truncated again. A negative span (a clock step) reads
/// as less than a second.
pub fn human_duration(nanos: i64) -> String {
    let seconds = nanos / SECOND;
    let minutes = seconds / 60;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = nanos.saturating_add(HOUR / 2) / HOUR;
    match hours {
        1 => "About an hour".into(),
        h if h < 48 => format!("{h} hours"),
        h if h < 24 * 7 * 2 => format!("{} days", h / 24),
        h if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        h if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", nanos / HOUR / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(4_400_000), "4.4MB");
        assert_eq!(human_size(1_234_567_890), "1.235GB");
    }

    #[test]
    fn durations_follow_go_units_table() {
        let s = SECOND;
        let m = 60 * s;
        let h = HOUR;
        let d = 24 * h;
        let table = [
            (-5 * s, "Less than a second"),
            (0, "Less than a second"),
            (s - 1, "Less than a second"),
            (s, "1 second"),
            (2 * s, "2 seconds"),
            (59 * s, "59 seconds"),
            (60 * s, "About a minute"),
            (119 * s, "About a minute"),
            (2 * m, "2 minutes"),
            (59 * m, "59 minutes"),
            (60 * m, "About an hour"),
            (89 * m, "About an hour"),
            (90 * m, "2 hours"),
            (3 * h, "3 hours"),
            (47 * h, "47 hours"),
            (47 * h + 30 * m, "2 days"),
            (48 * h, "2 days"),
            (13 * d, "13 days"),
            (14 * d, "2 weeks"),
            (59 * d, "8 weeks"),
            (60 * d, "2 months"),
            (364 * d, "12 months"),
            (2 * 365 * d, "2 years"),
            (3 * 365 * d + 12 * h, "3 years"),
        ];
        for (nanos, text) in table {
            assert_eq!(human_duration(nanos), text, "{nanos} ns");
        }
    }
}
