//! What the store's test binaries share.

#![allow(dead_code)] // each test binary uses its own part of this

use chrono::NaiveDateTime;

use medgrid_domain::access::{Principal, Role, Scope, ScopeKind};
use medgrid_domain::org::Unit;
use medgrid_domain::referral::Priority;
use medgrid_store::referral::{Move, ReferralDraft};
use medgrid_store::{Actor, Store};

/// A live up-referral from `from` to `to` for `resident`, sent at `sent_at` and accepted by
/// the receiving side an hour later: the only kind of referral that may take a reserved slot.
pub async fn accepted_referral(
    store: &Store,
    from: &Unit,
    to: &Unit,
    resident: i64,
    priority: Priority,
    sent_at: NaiveDateTime,
) -> i64 {
    let actor = Actor::system("test");
    let f = store
        .create_referral(
            &actor,
            &ReferralDraft {
                resident_id: resident,
                from_unit_id: from.id,
                to_unit_id: Some(to.id),
                priority: Some(priority),
                diagnosis: "I21.0".into(),
                reason: "胸痛待查".into(),
                send: true,
                ..ReferralDraft::default()
            },
            sent_at,
        )
        .await
        .unwrap();
    let receiver = unit_principal("receiver", Role::Specialist, to);
    store
        .move_referral(
            &actor,
            &receiver,
            f.id,
            &Move::Accept {
                note: String::new(),
            },
            sent_at + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    f.id
}

/// Someone acting for `unit` alone, in `role`.
pub fn unit_principal(username: &str, role: Role, unit: &Unit) -> Principal {
    Principal {
        user_id: 0,
        username: username.into(),
        role,
        scope: Scope {
            kind: ScopeKind::Unit,
            path: unit.path(),
        },
    }
}
