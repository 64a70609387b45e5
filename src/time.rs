//! Civil dates and Unix seconds, the three ways they are written here (RFC 3339 for
//! ExecCredential, the HTTP `Date` header, X.509 validity), and short durations for
//! people (`41m`). Pure functions, and [`unix_now`], the one reading of the clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// The clock, in Unix seconds (0 before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Seconds since the Unix epoch as RFC 3339 UTC with whole seconds, e.g. `2026-11-28T11:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

/// Unix seconds of a UTC civil time; `None` when a field is out of range (years 0 to
/// 9999, as every format here writes four digits at most).
pub fn unix(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    let in_range = (0..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..=23).contains(&hour)
        && (0..=59).contains(&minute)
        && (0..=60).contains(&second);
    if !in_range {
        return None;
    }
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * m + 2) / 5 + day - 1;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// An HTTP date in the preferred form, `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
pub fn http_date(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut parts = text.split_ascii_whitespace().skip(1);
    let day = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let year = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|n| n.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    (parts.next() == Some("GMT")).then_some(())?;
    unix(year, month, day, hour, minute, second)
}

/// A span for people, rounded down to its largest units: `45s`, `41m`, `3h12m`, `2d4h`;
/// negative spans get a `-`.
pub fn span(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    match s {
        0..60 => format!("{sign}{s}s"),
        60..3_600 => format!("{sign}{}m", s / 60),
        3_600..86_400 => format!("{sign}{}h{}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{sign}{}d{}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_863_600), "2026-11-28T11:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        for t in [0, 951_782_400, 1_795_863_600, 4_107_542_399] {
            let text = rfc3339(t);
            let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
            assert_eq!(unix(n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19)), Some(t));
        }
        assert_eq!(unix(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(unix(i64::MAX, 1, 1, 0, 0, 0), None, "no overflow");
        assert_eq!(unix(2026, 1, 1, -1, 0, 0), None);
        assert_eq!(http_date("Sun, 06 Nov 9223372036854775807 08:49:37 GMT"), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(http_date("Sat, 28 Nov 2026 11:00:00 GMT"), Some(1_795_863_600));
        assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(http_date(""), None);
    }

    #[test]
    fn spans() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(41 * 60 + 59), "41m");
        assert_eq!(span(3 * 3_600 + 12 * 60), "3h12m");
        assert_eq!(span(2 * 86_400 + 4 * 3_600 + 5), "2d4h");
        assert_eq!(span(-90), "-1m");
    }
}
