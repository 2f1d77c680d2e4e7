//! The `Date` header value (IMF-fixdate), formatted at most once a second.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

/// `Date: ` + value + CRLF.
const FIELD_LEN: usize = 6 + DATE_LEN + 2;

/// A cached `Date` field, owned by one event loop.
pub(crate) struct DateCache {
    /// The whole field line, ready to copy into a response head.
    field: [u8; FIELD_LEN],
    /// When the cached second is over.
    next: Instant,
}

impl DateCache {
    pub(crate) fn new() -> DateCache {
        let mut cache = DateCache {
            field: [0; FIELD_LEN],
            next: Instant::now(),
        };
        cache.refresh(Instant::now());
        cache
    }

    /// A cache that always shows the same date, for reproducible output.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn fixed() -> DateCache {
        DateCache {
            field: field(format(784_111_777)),
            next: Instant::now() + Duration::from_secs(1 << 30),
        }
    }

    /// Re-formats the date if the second it shows has passed.
    pub(crate) fn refresh(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.field = field(format(since_epoch.as_secs()));
        let to_next_second =
            Duration::from_nanos(1_000_000_000 - since_epoch.subsec_nanos() as u64);
        self.next = now + to_next_second;
    }

    /// The whole field, `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n`.
    pub(crate) fn field(&self) -> &[u8; FIELD_LEN] {
        &self.field
    }
}

/// `Date: value\r\n`.
fn field(value: [u8; DATE_LEN]) -> [u8; FIELD_LEN] {
    let mut field = [0; FIELD_LEN];
    field[..6].copy_from_slice(b"Date: ");
    field[6..6 + DATE_LEN].copy_from_slice(&value);
    field[6 + DATE_LEN..].copy_from_slice(b"\r\n");
    field
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
pub(crate) fn format(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    put2(&mut out[12..14], (year / 100) as u32);
    put2(&mut out[14..16], (year % 100) as u32);
    put2(&mut out[17..19], (rem / 3600) as u32);
    put2(&mut out[20..22], (rem / 60 % 60) as u32);
    put2(&mut out[23..25], (rem % 60) as u32);
    out
}

fn put2(dst: &mut [u8], n: u32) {
    dst[0] = b'0' + (n / 10 % 10) as u8;
    dst[1] = b'0' + (n % 10) as u8;
}

/// Howard Hinnant's days-to-civil: (year, month 1..=12, day 1..=31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        let cases: [(u64, &str); 5] = [
            (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, "Sun, 06 Nov 1994 08:49:37 GMT"),
            (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
            (1_700_000_000, "Tue, 14 Nov 2023 22:13:20 GMT"),
            (4_102_444_799, "Thu, 31 Dec 2099 23:59:59 GMT"),
        ];
        for (secs, want) in cases {
            assert_eq!(std::str::from_utf8(&format(secs)).unwrap(), want, "{secs}");
        }
    }

    #[test]
    fn cache_refreshes_only_after_its_second() {
        let mut cache = DateCache::new();
        let first = *cache.field();
        let next = cache.next;
        cache.refresh(next - Duration::from_millis(1));
        assert_eq!(cache.next, next);
        assert_eq!(*cache.field(), first);
        cache.refresh(next);
        assert!(cache.next > next);
    }
}
