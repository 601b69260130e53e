//! Two-way referral (R4): its vocabulary and the state machine every referral follows, with
//! who may move it. The store persists what this module decides; nothing else may change a
//! referral's status.

use crate::access::{OrgPath, Principal, Role};
use crate::codes::icd10::{Icd10, Icd10Range};
use crate::error::FieldError;
use crate::org::vocabulary;

vocabulary! {
    /// A referral proper, or a request for advice (咨询) that may later become one.
    Kind, "kind" {
        Referral => "referral", "转诊";
        Advice => "advice", "咨询";
    }
}

vocabulary! {
    /// The group's referral catalogues (R4.1), each a list of ICD-10 codes or ranges.
    CatalogueKind, "kind" {
        PrimaryFirstVisit => "primary_first_visit", "基层首诊病种";
        DownReferral => "down_referral", "下转病种";
        UpReferral => "up_referral", "上转类别";
        KeepInCity => "keep_in_city", "不得转出市外病种";
    }
}

/// One line of a catalogue: a code or range of codes and what people call it. A category
/// without codes (such as "危急重症") matches nothing by code and is listed for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogueEntry {
    pub range: Option<Icd10Range>,
    pub label: String,
}

impl CatalogueEntry {
    /// Reads a line such as `I10-I15 高血压` or `- 危急重症` (`-` for no codes). `line` is the
    /// 1-based line number used in the error.
    pub fn parse_line(line: usize, raw: &str) -> Result<CatalogueEntry, FieldError> {
        let t = raw.trim();
        let field = format!("entries[{line}]");
        let (codes, label) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let label = label.trim();
        if label.is_empty() {
            return Err(FieldError::new(
                &field,
                "required",
                format!("第 {line} 行缺少病种名称（格式：ICD-10 编码或范围 空格 名称）"),
                format!("line {line} has no name (format: ICD-10 code or range, space, name)"),
            ));
        }
        if label.chars().count() > 100 {
            return Err(FieldError::new(
                &field,
                "too_long",
                format!("第 {line} 行名称超过 100 个字符"),
                format!("line {line}: the name exceeds 100 characters"),
            ));
        }
        let range = if codes == "-" {
            None
        } else {
            Some(Icd10Range::parse(&field, codes)?)
        };
        Ok(CatalogueEntry {
            range,
            label: label.to_owned(),
        })
    }

    /// Reads a whole list, one entry a line, blank lines skipped; every bad line is reported.
    pub fn parse_list(text: &str) -> Result<Vec<CatalogueEntry>, Vec<FieldError>> {
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match CatalogueEntry::parse_line(i + 1, line) {
                Ok(e) => out.push(e),
                Err(e) => bad.push(e),
            }
        }
        if bad.is_empty() {
            Ok(out)
        } else {
            Err(bad)
        }
    }

    /// The entry as a line that [`CatalogueEntry::parse_line`] reads back.
    pub fn to_line(&self) -> String {
        match &self.range {
            Some(r) => format!("{r} {}", self.label),
            None => format!("- {}", self.label),
        }
    }
}

impl CatalogueKind {
    /// medgrid's starting list, used until the group publishes its own: the policy texts'
    /// examples (seeds 000–002) made concrete with ICD-10 codes.
    pub fn default_text(self) -> &'static str {
        match self {
            CatalogueKind::PrimaryFirstVisit => {
                include_str!("../../../data/catalogues/primary_first_visit.txt")
            }
            CatalogueKind::DownReferral => {
                include_str!("../../../data/catalogues/down_referral.txt")
            }
            CatalogueKind::UpReferral => include_str!("../../../data/catalogues/up_referral.txt"),
            CatalogueKind::KeepInCity => include_str!("../../../data/catalogues/keep_in_city.txt"),
        }
    }
}

/// Whether `code` falls in any entry of a catalogue.
pub fn in_catalogue(entries: &[CatalogueEntry], code: &Icd10) -> bool {
    entries
        .iter()
        .any(|e| e.range.as_ref().is_some_and(|r| r.contains(code)))
}

/// How long a referral may wait at each step before it is escalated to the coordinator
/// (R4.5), by priority. Configurable per deployment; the defaults follow the urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Timers {
    /// Hours a sent referral may wait for the receiving side to accept or decline.
    pub accept_hours: [i64; 3],
    /// Hours an accepted referral may wait for a booking.
    pub book_hours: [i64; 3],
    /// Hours within which a queued (no slot available) referral must be offered a slot.
    pub queue_hours: [i64; 3],
    /// Hours after its last move that an open, unbooked referral expires.
    pub expire_hours: i64,
}

impl Default for Timers {
    fn default() -> Timers {
        // routine, urgent, green channel
        Timers {
            accept_hours: [48, 12, 2],
            book_hours: [72, 24, 4],
            queue_hours: [14 * 24, 72, 24],
            expire_hours: 30 * 24,
        }
    }
}

impl Timers {
    fn pick(arr: [i64; 3], p: Priority) -> chrono::Duration {
        let i = match p {
            Priority::Routine => 0,
            Priority::Urgent => 1,
            Priority::Green => 2,
        };
        chrono::Duration::hours(arr[i])
    }
    pub fn accept_within(&self, p: Priority) -> chrono::Duration {
        Self::pick(self.accept_hours, p)
    }
    pub fn book_within(&self, p: Priority) -> chrono::Duration {
        Self::pick(self.book_hours, p)
    }
    pub fn queue_within(&self, p: Priority) -> chrono::Duration {
        Self::pick(self.queue_hours, p)
    }
}

impl Priority {
    /// Green channel first, then urgent, then routine: the order of every queue.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Green => 0,
            Priority::Urgent => 1,
            Priority::Routine => 2,
        }
    }
}

/// Where one referral stands in the organisation: its two ends and its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub from: OrgPath,
    /// `None` while addressed to "any unit of the group with capacity".
    pub to: Option<OrgPath>,
    pub group: OrgPath,
}

/// The sides `p` acts for on a referral with these ends. Clinicians act for the unit their
/// scope covers; the group's referral coordinator acts as coordinator. A clinician whose scope
/// covers both ends (a group-wide account) holds both sides.
pub fn parties(p: &Principal, ends: &Ends) -> Vec<Party> {
    let mut out = Vec::new();
    let clinical = matches!(p.role, Role::FamilyDoctor | Role::Specialist);
    if clinical && p.scope.contains(&ends.from) {
        out.push(Party::Sender);
    }
    if clinical && ends.to.is_some_and(|to| p.scope.contains(&to)) {
        out.push(Party::Receiver);
    }
    if p.role == Role::ReferralCoordinator && p.scope.contains(&ends.group) {
        out.push(Party::Coordinator);
    }
    out
}

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
    next_of(Kind::Referral, from, transition, party)
}

/// As [`next`], for either kind: an advice request is answered (completed by the receiving
/// side once accepted) and is never booked.
pub fn next_of(
    kind: Kind,
    from: Status,
    transition: Transition,
    party: Party,
) -> Result<Status, FieldError> {
    if kind == Kind::Advice && matches!(transition, Transition::Book | Transition::Arrive) {
        return Err(FieldError::new(
            "kind",
            "advice_not_booked",
            "咨询申请不预约号源；如需就诊请转为转诊",
            "an advice request is not booked; turn it into a referral first",
        ));
    }
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
        Complete => (
            (matches!(from, Arrived) || (kind == Kind::Advice && matches!(from, Accepted)))
                .then_some(Completed),
            &[Receiver],
        ),
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

    #[test]
    fn the_default_catalogues_read_and_cover_what_they_name() {
        for kind in CatalogueKind::ALL {
            let list = CatalogueEntry::parse_list(kind.default_text()).unwrap();
            assert!(!list.is_empty(), "{kind}");
            for e in &list {
                assert_eq!(CatalogueEntry::parse_line(1, &e.to_line()).unwrap(), *e);
            }
        }
        let first =
            CatalogueEntry::parse_list(CatalogueKind::PrimaryFirstVisit.default_text()).unwrap();
        assert!(first.len() >= 50, "seed 001 asks for at least 50 diseases");
        let hypertension = Icd10::parse("d", "I10.x00").unwrap();
        assert!(in_catalogue(&first, &hypertension));
        let down = CatalogueEntry::parse_list(CatalogueKind::DownReferral.default_text()).unwrap();
        assert!(!in_catalogue(&down, &Icd10::parse("d", "J06.9").unwrap()));
    }

    #[test]
    fn a_bad_catalogue_line_is_named_by_its_number() {
        let err = CatalogueEntry::parse_list("I10 高血压\nZZZ 乱码\nE11\n").unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].field, "entries[2]");
        assert_eq!(err[1].field, "entries[3]");
    }

    #[test]
    fn an_advice_request_is_answered_not_booked() {
        let s = next_of(
            Kind::Advice,
            Status::Sent,
            Transition::Accept,
            Party::Receiver,
        )
        .unwrap();
        assert!(next_of(Kind::Advice, s, Transition::Book, Party::Sender).is_err());
        assert_eq!(
            next_of(Kind::Advice, s, Transition::Complete, Party::Receiver).unwrap(),
            Status::Completed
        );
        assert!(next(Status::Accepted, Transition::Complete, Party::Receiver).is_err());
    }

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
