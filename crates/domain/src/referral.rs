//! Two-way referral (R4): its vocabulary and the state machine every referral follows, with
//! who may move it. The store persists what this module decides; nothing else may change a
//! referral's status.

use crate::error::FieldError;
use crate::org::vocabulary;

vocabulary! {
    /// Up to a higher level (上转) or down to primary care (下转).
    Direction, "direction" {
        Up => "up", "上转";
        Down => "down", "下转";
    }
}

vocabulary! {
    /// How soon the patient must be seen; `Green` is the green channel (绿色通道).
    Priority, "priority" {
        Routine => "routine", "普通";
        Urgent => "urgent", "加急";
        Green => "green", "绿色通道";
    }
}

vocabulary! {
    /// Where a referral stands (a FHIR Task's status mirrors it).
    Status, "status" {
        Draft => "draft", "草稿";
        Sent => "sent", "已发送";
        Redirected => "redirected", "已改派";
        Accepted => "accepted", "已接收";
        Declined => "declined", "已拒绝";
        Booked => "booked", "已预约";
        Arrived => "arrived", "已到诊";
        Completed => "completed", "已完成";
        Cancelled => "cancelled", "已取消";
        Expired => "expired", "已过期";
    }
}

impl Status {
    /// No transition leaves a closed referral.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Status::Declined | Status::Completed | Status::Cancelled | Status::Expired
        )
    }

    /// The FHIR R4 Task.status code for this state.
    pub fn fhir_task_status(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Sent | Status::Redirected => "requested",
            Status::Accepted => "accepted",
            Status::Declined => "rejected",
            Status::Booked | Status::Arrived => "in-progress",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Expired => "failed",
        }
    }
}

vocabulary! {
    /// What someone does to a referral.
    Transition, "transition" {
        Send => "send", "发送";
        Redirect => "redirect", "改派";
        Accept => "accept", "接收";
        Decline => "decline", "拒绝";
        Book => "book", "预约";
        Arrive => "arrive", "到诊";
        Complete => "complete", "完成";
        Cancel => "cancel", "取消";
        Expire => "expire", "过期";
    }
}

/// The side a person acts for, relative to one referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// Staff of the referring unit.
    Sender,
    /// Staff of the unit (or department) the referral is addressed to.
    Receiver,
    /// The referral coordinator of the group (R4.5).
    Coordinator,
    /// medgrid itself: timers and expiry.
    System,
}

/// The state a transition leads to from `from`, if `party` may make it; otherwise the reason,
/// naming the field `status` (or `party`) in Chinese and English.
pub fn next(from: Status, transition: Transition, party: Party) -> Result<Status, FieldError> {
    use Party::*;
    use Status::*;
    use Transition::*;
    if from.is_closed() {
        return Err(FieldError::new(
            "status",
            "closed",
            format!("转诊已{}，不能再{}", from.label_zh(), transition.label_zh()),
            format!("the referral is {from}; it cannot be {}", past(transition)),
        ));
    }
    let (to, allowed): (Option<Status>, &[Party]) = match transition {
        Send => (matches!(from, Draft).then_some(Sent), &[Sender]),
        Redirect => (
            matches!(from, Sent | Redirected).then_some(Redirected),
            &[Receiver, Coordinator],
        ),
        Accept => (
            matches!(from, Sent | Redirected).then_some(Accepted),
            &[Receiver],
        ),
        Decline => (
            matches!(from, Sent | Redirected).then_some(Declined),
            &[Receiver],
        ),
        Book => (
            matches!(from, Accepted).then_some(Booked),
            &[Sender, Receiver, Coordinator],
        ),
        Arrive => (matches!(from, Booked).then_some(Arrived), &[Receiver]),
        Complete => (matches!(from, Arrived).then_some(Completed), &[Receiver]),
        Cancel => (Some(Cancelled), &[Sender]),
        Expire => ((from != Draft).then_some(Expired), &[System]),
    };
    let Some(to) = to else {
        return Err(FieldError::new(
            "status",
            "invalid_transition",
            format!("转诊{}时不能{}", from.label_zh(), transition.label_zh()),
            format!("a referral that is {from} cannot be {}", past(transition)),
        ));
    };
    if !allowed.contains(&party) {
        return Err(FieldError::new(
            "party",
            "not_your_side",
            format!("只有{}可以{}转诊", sides_zh(allowed), transition.label_zh()),
            format!(
                "only {} may {} a referral",
                sides_en(allowed),
                transition.as_str()
            ),
        ));
    }
    Ok(to)
}

fn past(t: Transition) -> &'static str {
    match t {
        Transition::Send => "sent",
        Transition::Redirect => "redirected",
        Transition::Accept => "accepted",
        Transition::Decline => "declined",
        Transition::Book => "booked",
        Transition::Arrive => "marked arrived",
        Transition::Complete => "completed",
        Transition::Cancel => "cancelled",
        Transition::Expire => "expired",
    }
}

fn sides_zh(parties: &[Party]) -> String {
    parties
        .iter()
        .map(|p| match p {
            Party::Sender => "转出方",
            Party::Receiver => "接收方",
            Party::Coordinator => "转诊协调员",
            Party::System => "系统",
        })
        .collect::<Vec<_>>()
        .join("或")
}

fn sides_en(parties: &[Party]) -> String {
    parties
        .iter()
        .map(|p| match p {
            Party::Sender => "the referring side",
            Party::Receiver => "the receiving side",
            Party::Coordinator => "the coordinator",
            Party::System => "medgrid",
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTIES: [Party; 4] = [
        Party::Sender,
        Party::Receiver,
        Party::Coordinator,
        Party::System,
    ];

    #[test]
    fn the_journey_of_a_referral() {
        let mut s = Status::Draft;
        for (t, p) in [
            (Transition::Send, Party::Sender),
            (Transition::Accept, Party::Receiver),
            (Transition::Book, Party::Sender),
            (Transition::Arrive, Party::Receiver),
            (Transition::Complete, Party::Receiver),
        ] {
            s = next(s, t, p).unwrap();
        }
        assert_eq!(s, Status::Completed);
        assert_eq!(s.fhir_task_status(), "completed");
    }

    #[test]
    fn only_the_receiving_side_accepts_or_declines_and_only_the_sender_cancels() {
        for p in PARTIES {
            assert_eq!(
                next(Status::Sent, Transition::Accept, p).is_ok(),
                p == Party::Receiver
            );
            assert_eq!(
                next(Status::Sent, Transition::Decline, p).is_ok(),
                p == Party::Receiver
            );
            assert_eq!(
                next(Status::Booked, Transition::Cancel, p).is_ok(),
                p == Party::Sender
            );
            assert_eq!(
                next(Status::Sent, Transition::Expire, p).is_ok(),
                p == Party::System
            );
        }
        let e = next(Status::Sent, Transition::Accept, Party::Sender).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("party", "not_your_side"));
        assert!(e.message_zh.contains("接收方") && e.message_en.contains("receiving side"));
    }

    #[test]
    fn closed_referrals_stay_closed() {
        for from in Status::ALL.iter().filter(|s| s.is_closed()) {
            for t in Transition::ALL {
                for p in PARTIES {
                    let e = next(*from, *t, p).unwrap_err();
                    assert_eq!(e.code, "closed", "{from} {t} {p:?}");
                }
            }
        }
    }

    #[test]
    fn every_open_state_can_be_cancelled_and_expired_and_nothing_skips_a_step() {
        for from in Status::ALL.iter().filter(|s| !s.is_closed()) {
            assert_eq!(
                next(*from, Transition::Cancel, Party::Sender),
                Ok(Status::Cancelled)
            );
            assert_eq!(
                next(*from, Transition::Expire, Party::System).is_ok(),
                *from != Status::Draft
            );
        }
        // The whole table: which (state, transition) pairs lead anywhere for the right party.
        let mut moves = Vec::new();
        for from in Status::ALL {
            for t in Transition::ALL {
                if PARTIES.iter().any(|p| next(*from, *t, *p).is_ok()) {
                    moves.push(format!("{from}:{t}"));
                }
            }
        }
        assert_eq!(
            moves.join(" "),
            "draft:send draft:cancel \
             sent:redirect sent:accept sent:decline sent:cancel sent:expire \
             redirected:redirect redirected:accept redirected:decline redirected:cancel redirected:expire \
             accepted:book accepted:cancel accepted:expire \
             booked:arrive booked:cancel booked:expire \
             arrived:complete arrived:cancel arrived:expire"
        );
    }

    #[test]
    fn vocabulary_reads_codes_and_chinese_labels() {
        assert_eq!(Priority::parse("绿色通道").unwrap(), Priority::Green);
        assert_eq!(Direction::parse("down").unwrap(), Direction::Down);
        assert_eq!(Status::parse("x").unwrap_err().field, "status");
    }
}
