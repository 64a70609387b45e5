//! The clock for tests: Unix seconds now, and RFC 3339 UTC timestamps written and read.
//! Written apart from the binary's own formatter (a walk over years and months, not its
//! civil-date arithmetic), so that tests check the binary against an independent answer.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn rfc3339(unix: i64) -> String {
    let (mut days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let mut year = 1970;
    while days < 0 {
        year -= 1;
        days += year_days(year);
    }
    while days >= year_days(year) {
        days -= year_days(year);
        year += 1;
    }
    let mut month = 1;
    while days >= month_days(year, month) {
        days -= month_days(year, month);
        month += 1;
    }
    let day = days + 1;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3_600, secs % 3_600 / 60, secs % 60)
}

/// Unix seconds for `YYYY-MM-DDTHH:MM:SSZ`; panics on anything else.
pub fn parse_rfc3339(text: &str) -> i64 {
    let b = text.as_bytes();
    let shape = text.len() == 20
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'Z';
    assert!(shape, "not RFC 3339 UTC seconds: {text}");
    let n = |range: std::ops::Range<usize>| {
        text[range].parse::<i64>().unwrap_or_else(|_| panic!("not RFC 3339 UTC seconds: {text}"))
    };
    let (year, month, day) = (n(0..4), n(5..7), n(8..10));
    assert!((1..=12).contains(&month) && (1..=month_days(year, month)).contains(&day), "no such date: {text}");
    let years: i64 =
        if year >= 1970 { (1970..year).map(year_days).sum() } else { -(year..1970).map(year_days).sum::<i64>() };
    let days = years + (1..month).map(|m| month_days(year, m)).sum::<i64>() + day - 1;
    days * 86_400 + n(11..13) * 3_600 + n(14..16) * 60 + n(17..19)
}

fn leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn year_days(year: i64) -> i64 {
    if leap(year) { 366 } else { 365 }
}

fn month_days(year: i64, month: i64) -> i64 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(unix: i64, text: &str) {
        assert_eq!(rfc3339(unix), text);
        assert_eq!(parse_rfc3339(text), unix, "{text}");
    }

    #[test]
    fn writes_and_reads_timestamps() {
        check(0, "1970-01-01T00:00:00Z");
        check(-1, "1969-12-31T23:59:59Z");
        check(951_782_400, "2000-02-29T00:00:00Z");
        check(1_767_225_599, "2025-12-31T23:59:59Z");
        check(1_795_863_600, "2026-11-28T11:00:00Z");
        check(4_107_542_399, "2100-02-28T23:59:59Z");
        check(4_107_542_400, "2100-03-01T00:00:00Z");
    }

    #[test]
    fn every_day_round_trips() {
        let four_centuries = parse_rfc3339("2300-01-01T00:00:00Z") - parse_rfc3339("1900-01-01T00:00:00Z");
        assert_eq!(four_centuries, 146_097 * 86_400, "400 Gregorian years");
        let (start, end) = (parse_rfc3339("1960-01-01T00:00:00Z"), parse_rfc3339("2110-01-01T00:00:00Z"));
        // a second short of a day, so the time of day moves too
        for unix in (start..end).step_by(86_399) {
            assert_eq!(parse_rfc3339(&rfc3339(unix)), unix);
        }
    }

    #[test]
    #[should_panic(expected = "no such date")]
    fn refuses_impossible_dates() {
        parse_rfc3339("2026-02-29T00:00:00Z");
    }
}
