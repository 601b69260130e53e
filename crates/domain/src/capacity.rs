//! Reserved capacity for referrals (R5.1–R5.3): the share of each lead-hospital session kept for
//! patients referred by primary units and family-doctor teams, when slots open, and when unused
//! reserved slots return to general booking. The store applies these rules inside the same
//! transaction that takes a slot.

use chrono::{Days, NaiveDateTime, NaiveTime};

use crate::error::FieldError;
use crate::referral::Priority;

/// A group's reservation policy. Seed 002 sets the defaults: at least a third of each
/// lead-hospital outpatient session and a quarter of its beds, open to members 14 days ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Reserved share of a lead-hospital outpatient session, as numerator / denominator.
    pub session_share: (u32, u32),
    /// Reserved share of a lead hospital's beds.
    pub bed_share: (u32, u32),
    /// Days before a session that its slots open.
    pub open_days_ahead: u64,
    /// Time of day slots open.
    pub release_at: NaiveTime,
    /// Hours before a slot when an unused reserved slot returns to general booking.
    pub return_hours: i64,
    /// How soon an urgent and a green-channel referral must be seen: their booking windows,
    /// nearer than the release window that routine referrals book within.
    pub urgent_window_hours: i64,
    pub green_window_hours: i64,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            session_share: (1, 3),
            bed_share: (1, 4),
            open_days_ahead: 14,
            release_at: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN),
            return_hours: 24,
            urgent_window_hours: 72,
            green_window_hours: 48,
        }
    }
}

/// Who a booking is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingKind {
    /// A patient referred by a primary unit or a family-doctor team.
    Referral,
    /// Anyone else.
    General,
}

impl BookingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BookingKind::Referral => "referral",
            BookingKind::General => "general",
        }
    }
}

impl Policy {
    /// Slots a session of `capacity` must keep for referrals (rounded up).
    pub fn reserved_needed(&self, capacity: u32) -> u32 {
        let (num, den) = self.session_share;
        (capacity * num).div_ceil(den.max(1))
    }

    /// Checks a session's capacity and reservation; lead hospitals must keep their share.
    pub fn check_session(
        &self,
        capacity: u32,
        reserved: u32,
        lead: bool,
    ) -> Result<(), FieldError> {
        if capacity == 0 || capacity > 500 {
            return Err(FieldError::new(
                "capacity",
                "out_of_range",
                "号源数须在 1 到 500 之间",
                "must be between 1 and 500",
            ));
        }
        if reserved > capacity {
            return Err(FieldError::new(
                "reserved",
                "above_capacity",
                "预留号源不能多于号源总数",
                "cannot exceed the capacity",
            ));
        }
        let needed = self.reserved_needed(capacity);
        if lead && reserved < needed {
            let (num, den) = self.session_share;
            return Err(FieldError::new(
                "reserved",
                "below_reservation",
                format!("牵头医院每个门诊单元须为基层转诊预留不少于 {num}/{den} 的号源：{capacity} 个号源至少预留 {needed} 个"),
                format!("a lead-hospital session must reserve at least {num}/{den} for referrals: {needed} of {capacity}"),
            ));
        }
        Ok(())
    }

    /// Beds of a ward that must be kept for referrals (rounded up).
    pub fn reserved_beds_needed(&self, beds: u32) -> u32 {
        let (num, den) = self.bed_share;
        (beds * num).div_ceil(den.max(1))
    }

    /// Checks a ward's beds and reservation; a lead hospital's wards keep the bed share.
    pub fn check_ward(&self, beds: u32, reserved: u32, lead: bool) -> Result<(), FieldError> {
        if beds == 0 || beds > 2000 {
            return Err(FieldError::new(
                "beds",
                "out_of_range",
                "床位数须在 1 到 2000 之间",
                "must be between 1 and 2000",
            ));
        }
        if reserved > beds {
            return Err(FieldError::new(
                "reserved_beds",
                "above_capacity",
                "预留床位不能多于床位总数",
                "cannot exceed the beds",
            ));
        }
        let needed = self.reserved_beds_needed(beds);
        if lead && reserved < needed {
            let (num, den) = self.bed_share;
            return Err(FieldError::new(
                "reserved_beds",
                "below_reservation",
                format!("牵头医院病区须为基层转诊预留不少于 {num}/{den} 的床位：{beds} 张床至少预留 {needed} 张"),
                format!("a lead-hospital ward must reserve at least {num}/{den} of its beds for referrals: {needed} of {beds}"),
            ));
        }
        Ok(())
    }

    /// The moment an admission on `day` is judged against, like a slot's start.
    pub fn admission_moment(&self, day: chrono::NaiveDate) -> NaiveDateTime {
        day.and_time(self.release_at)
    }

    /// When the slots of a session starting at `start` open.
    pub fn opens_at(&self, start: NaiveDateTime) -> NaiveDateTime {
        let day = start
            .date()
            .checked_sub_days(Days::new(self.open_days_ahead))
            .unwrap_or(start.date());
        day.and_time(self.release_at)
    }

    /// Whether a booking of `kind` may take a slot starting at `start` at moment `now`.
    pub fn may_take(
        &self,
        reserved: bool,
        kind: BookingKind,
        start: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<(), FieldError> {
        if now >= start {
            return Err(FieldError::new(
                "slot",
                "past",
                "该号源时间已过",
                "the slot has already begun",
            ));
        }
        let opens = self.opens_at(start);
        if now < opens {
            return Err(FieldError::new(
                "slot",
                "not_open",
                format!("号源将于 {} 放出", opens.format("%Y-%m-%d %H:%M")),
                format!("the slot opens at {}", opens.format("%Y-%m-%d %H:%M")),
            ));
        }
        let returns = start - chrono::Duration::hours(self.return_hours);
        if reserved && kind == BookingKind::General && now < returns {
            return Err(FieldError::new(
                "slot",
                "reserved_for_referrals",
                format!(
                    "该号源为基层转诊预留，{} 起未用则转为普通号源",
                    returns.format("%Y-%m-%d %H:%M")
                ),
                format!(
                    "the slot is reserved for referrals until {}",
                    returns.format("%Y-%m-%d %H:%M")
                ),
            ));
        }
        Ok(())
    }

    /// The latest start a referral of `priority` may be booked for, judged at `now`: a green
    /// channel or urgent patient is seen within their own nearer window or queued (first) for
    /// the next freed slot, never parked two weeks out.
    pub fn window_end(&self, priority: Priority, now: NaiveDateTime) -> Option<NaiveDateTime> {
        match priority {
            Priority::Routine => None,
            Priority::Urgent => Some(now + chrono::Duration::hours(self.urgent_window_hours)),
            Priority::Green => Some(now + chrono::Duration::hours(self.green_window_hours)),
        }
    }

    /// Refuses a slot beyond the referral's window (see [`Policy::window_end`]).
    pub fn check_window(
        &self,
        priority: Priority,
        start: NaiveDateTime,
        now: NaiveDateTime,
    ) -> Result<(), FieldError> {
        match self.window_end(priority, now) {
            Some(end) if start > end => {
                let hours = (end - now).num_hours();
                Err(FieldError::new(
                    "slot",
                    "beyond_priority_window",
                    format!(
                        "{}转诊须在 {hours} 小时内就诊：请选择 {} 前的号源，或登记候补（优先排队）",
                        priority.label_zh(),
                        end.format("%m-%d %H:%M")
                    ),
                    format!(
                        "a {priority} referral is seen within {hours} hours: choose a slot before {}, or queue it (it is served first)",
                        end.format("%m-%d %H:%M")
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Which of a session's slots are reserved: spread evenly through it, so that referred
    /// patients are not all seen at the end.
    pub fn reserved_positions(capacity: u32, reserved: u32) -> Vec<bool> {
        (0..capacity)
            .map(|i| {
                // Slot i is reserved when the running share of reserved slots steps up at it.
                let before = u64::from(i) * u64::from(reserved) / u64::from(capacity.max(1));
                let after = (u64::from(i) + 1) * u64::from(reserved) / u64::from(capacity.max(1));
                after > before
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_and_urgent_referrals_book_within_their_nearer_windows() {
        let p = Policy::default();
        let now = chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let in_40h = now + chrono::Duration::hours(40);
        let in_60h = now + chrono::Duration::hours(60);
        let in_10d = now + chrono::Duration::days(10);
        assert!(p.check_window(Priority::Green, in_40h, now).is_ok());
        let e = p.check_window(Priority::Green, in_60h, now).unwrap_err();
        assert_eq!(e.code, "beyond_priority_window");
        assert!(e.message_zh.contains("48 小时"), "{}", e.message_zh);
        assert!(p.check_window(Priority::Urgent, in_60h, now).is_ok());
        assert!(p.check_window(Priority::Urgent, in_10d, now).is_err());
        assert!(p.check_window(Priority::Routine, in_10d, now).is_ok());
    }
    use chrono::NaiveDate;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2025, 3, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn a_lead_session_keeps_a_third_for_referrals() {
        let p = Policy::default();
        assert_eq!(p.reserved_needed(30), 10);
        assert_eq!(p.reserved_needed(31), 11);
        assert!(p.check_session(30, 10, true).is_ok());
        let e = p.check_session(30, 9, true).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("reserved", "below_reservation")
        );
        assert!(e.message_zh.contains("10"));
        assert!(
            p.check_session(30, 0, false).is_ok(),
            "other units reserve as they choose"
        );
        assert_eq!(p.check_session(0, 0, false).unwrap_err().field, "capacity");
        assert_eq!(
            p.check_session(5, 6, false).unwrap_err().code,
            "above_capacity"
        );
    }

    #[test]
    fn slots_open_fourteen_days_ahead_and_reserved_ones_return_a_day_before() {
        let p = Policy::default();
        let start = at(20, 9);
        assert_eq!(p.opens_at(start), at(6, 8));
        let general = BookingKind::General;
        let referral = BookingKind::Referral;
        assert_eq!(
            p.may_take(false, general, start, at(6, 7))
                .unwrap_err()
                .code,
            "not_open"
        );
        assert!(p.may_take(false, general, start, at(6, 8)).is_ok());
        assert!(p.may_take(true, referral, start, at(6, 8)).is_ok());
        let e = p.may_take(true, general, start, at(10, 12)).unwrap_err();
        assert_eq!(e.code, "reserved_for_referrals");
        assert!(
            p.may_take(true, general, start, at(19, 9)).is_ok(),
            "returned to general booking"
        );
        assert_eq!(
            p.may_take(true, referral, start, at(20, 9))
                .unwrap_err()
                .code,
            "past"
        );
    }

    #[test]
    fn reserved_slots_are_spread_through_the_session() {
        let r = Policy::reserved_positions(30, 10);
        assert_eq!(r.iter().filter(|x| **x).count(), 10);
        assert!(r[..15].iter().filter(|x| **x).count() >= 4, "{r:?}");
        assert_eq!(Policy::reserved_positions(3, 0), vec![false; 3]);
        assert_eq!(Policy::reserved_positions(3, 3), vec![true; 3]);
    }
}
