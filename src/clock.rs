//! Unix times rendered in UTC for messages and reports, without a date crate: the proleptic
//! Gregorian calendar from a day count (Howard Hinnant's `civil_from_days`).

/// The latest instant rendered: 9999-12-31 23:59:59 UTC. Later (and absurd) times clamp to it.
const LAST_RENDERED: i64 = 253_402_300_799;

/// Year, month, day, and the seconds into that day, of a Unix time.
fn civil(secs: i64) -> (i64, i64, i64, i64) {
    let secs = secs.clamp(-LAST_RENDERED, LAST_RENDERED);
    let days = secs.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs.rem_euclid(86_400))
}

/// `YYYY-MM-DD` (UTC), for expiry dates.
pub fn utc_date(secs: i64) -> String {
    let (year, month, day, _) = civil(secs);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `YYYY-MM-DD HH:MM:SS UTC`, for the moments of a key rotation.
pub fn utc_time(secs: u64) -> String {
    let (year, month, day, rem) = civil(i64::try_from(secs).unwrap_or(i64::MAX));
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_right() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_799_535_600), "2027-01-09");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(951_782_400 + 3661), "2000-02-29 01:01:01 UTC");
        assert_eq!(utc_time(u64::MAX), "9999-12-31 23:59:59 UTC");
    }
}
