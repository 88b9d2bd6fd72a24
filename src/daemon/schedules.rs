//! The daemon's three cron schedules, parsed, and the zone they are read in.

use chrono::{DateTime, Utc};
use cron::Schedule;

/// The three schedules, parsed, and the zone they are read in.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub incremental: Schedule,
    pub full: Schedule,
    pub push: Schedule,
    /// `[schedule] timezone`: "30 2 * * *" is 02:30 there, DST included.
    pub timezone: chrono_tz::Tz,
}

impl Schedules {
    pub fn parse(s: &crate::config::ScheduleSettings) -> anyhow::Result<Self> {
        use crate::config::parse_cron;
        let parse = |key: &str, line: &str| {
            parse_cron(line).map_err(|m| anyhow::anyhow!("schedule.{key}: {m}"))
        };
        Ok(Self {
            incremental: parse("incremental", &s.incremental)?,
            full: parse("full", &s.full)?,
            push: parse("push", &s.push)?,
            timezone: crate::config::parse_timezone(&s.timezone)
                .map_err(|m| anyhow::anyhow!("schedule.timezone: {m}"))?,
        })
    }

    /// The first fire time of `schedule` after `now`, read in the zone.
    pub fn next_after(&self, schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        schedule
            .after(&now.with_timezone(&self.timezone))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod schedule_tests {
    use chrono::{TimeZone, Utc};

    use super::Schedules;
    use crate::config::ScheduleSettings;

    /// Cron lines are read in `[schedule] timezone`: "30 2 * * *" in Berlin
    /// is 00:30 UTC in summer (CEST) and 01:30 UTC in winter (CET).
    #[test]
    fn cron_lines_fire_in_the_configured_zone() {
        let s = Schedules::parse(&ScheduleSettings {
            full: "30 2 * * *".into(),
            timezone: "Europe/Berlin".into(),
            ..ScheduleSettings::default()
        })
        .unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let winter = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(
            s.next_after(&s.full, summer),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 30, 0).unwrap())
        );
        assert_eq!(
            s.next_after(&s.full, winter),
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 1, 30, 0).unwrap())
        );
        // UTC by default.
        let utc = Schedules::parse(&ScheduleSettings::default()).unwrap();
        assert_eq!(
            utc.next_after(&utc.full, summer),
            Some(Utc.with_ymd_and_hms(2026, 6, 1, 2, 30, 0).unwrap())
        );
    }
}
