//! Time helpers: the domain stores instants with microsecond precision.

use time::OffsetDateTime;

/// The current instant in UTC, truncated to whole microseconds so that what is
/// stored and what is returned are the same value on every storage backend.
pub fn now_micros() -> OffsetDateTime {
    truncate_micros(OffsetDateTime::now_utc())
}

/// `d` as a `time` duration, saturating (a standard duration can be longer
/// than the longest `time::Duration`).
pub fn span(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// `t` with its sub-microsecond part dropped.
pub fn truncate_micros(t: OffsetDateTime) -> OffsetDateTime {
    let nanos = t.nanosecond();
    t.replace_nanosecond(nanos - nanos % 1_000)
        .expect("a smaller nanosecond value is always valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn truncation_drops_sub_microsecond_digits() {
        let t = datetime!(2020-01-02 03:04:05.123456789 UTC);
        assert_eq!(
            truncate_micros(t),
            datetime!(2020-01-02 03:04:05.123456 UTC)
        );
    }
}
