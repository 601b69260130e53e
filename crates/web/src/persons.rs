//! The patient index's use cases (R2.1), shared by the JSON API, FHIR `Patient` and the web
//! UI so that all three agree on who may see and settle what.
//!
//! Reading a person is patient-level data: allowed where `PatientRead` reaches the person's
//! home unit or a unit holding one of their records. Identifiers and phones are masked (脱敏)
//! unless the caller asks for them in full, which is a separate audited read. Reviews, merges
//! and unmerges are `PatientIndexReview` on the group.

use medgrid_domain::access::{authorize, Action, Id, OrgPath};
use medgrid_domain::mask;
use medgrid_store::patient_index::{
    Arrival, Demographics, MatchCandidate, MatchReview, PatientRecord, Person, PersonFilter,
    PersonView, RecordDraft, ReviewDetail, Verdict,
};

use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

pub fn mask_person(p: &mut Person) {
    p.citizen_id = mask::identifier(&p.citizen_id);
    p.phone = mask::phone(&p.phone);
}

pub fn mask_record(r: &mut PatientRecord) {
    r.id_number = mask::identifier(&r.id_number);
    r.insurance_card = mask::identifier(&r.insurance_card);
    r.phone = mask::phone(&r.phone);
}

/// Files a unit's record of a person (PatientWrite at that unit).
pub async fn arrive(
    state: &AppState,
    caller: &Caller,
    draft: &RecordDraft,
) -> Result<Arrival, AppError> {
    let unit = state.store.unit(draft.unit_id).await.map_err(|e| match e {
        medgrid_store::StoreError::NotFound => AppError::Invalid(medgrid_domain::Invalid::one(
            medgrid_domain::FieldError::new("unit_id", "not_found", "机构不存在", "no such unit"),
        )),
        e => e.into(),
    })?;
    caller.allow(Action::PatientWrite, &unit.path()).await?;
    let mut arrival = state.store.arrive_record(&caller.actor, draft).await?;
    mask_record(&mut arrival.record);
    Ok(arrival)
}

/// Whether the caller may read `person`: through its home unit or any unit holding a record.
fn may_read(caller: &Caller, person: &Person, records: &[PatientRecord]) -> Option<OrgPath> {
    let home = person.path();
    if authorize(&caller.principal, Action::PatientRead, &home).is_ok() {
        return Some(home);
    }
    records
        .iter()
        .map(|r| OrgPath {
            unit: Some(r.unit_id),
            ..home
        })
        .find(|p| authorize(&caller.principal, Action::PatientRead, p).is_ok())
}

/// A person with every unit's record, masked unless `full`; a merged person resolves to
/// itself (with `merged_into_id` set) so that old references still read.
pub async fn read(
    state: &AppState,
    caller: &Caller,
    id: Id,
    full: bool,
) -> Result<PersonView, AppError> {
    let mut view = state.store.person_view(id).await?;
    let path = match may_read(caller, &view.person, &view.records) {
        Some(path) => path,
        // Refused through the ordinary check, so that the refusal is audited like others.
        None => {
            caller
                .allow(Action::PatientRead, &view.person.path())
                .await?;
            view.person.path()
        }
    };
    caller
        .audit_read(
            if full {
                "patient.read.identifiers"
            } else {
                "patient.read"
            },
            "Patient",
            id.to_string(),
            path,
        )
        .await?;
    if !full {
        mask_person(&mut view.person);
        view.records.iter_mut().for_each(mask_record);
    }
    Ok(view)
}

/// Residents matching the filter within the caller's reach, masked.
pub async fn search(
    state: &AppState,
    caller: &Caller,
    mut filter: PersonFilter,
) -> Result<Vec<Person>, AppError> {
    let scope = caller.principal.scope;
    caller.allow(Action::PatientRead, &scope.path).await?;
    filter.group_ids = scope.path.group.map(|g| vec![g]);
    let mut found = state.store.search_persons(&filter).await?;
    found.retain(|p| authorize(&caller.principal, Action::PatientRead, &p.path()).is_ok());
    caller
        .audit_read(
            "patient.search",
            "Patient",
            format!("{} found", found.len()),
            scope.path,
        )
        .await?;
    found.iter_mut().for_each(mask_person);
    Ok(found)
}

/// Persons of the caller's group that `d` may be, with their match grades (FHIR `$match`).
pub async fn find_matches(
    state: &AppState,
    caller: &Caller,
    d: &Demographics,
) -> Result<Vec<(MatchCandidate, Person)>, AppError> {
    let scope = caller.principal.scope;
    caller.allow(Action::PatientRead, &scope.path).await?;
    let Some(group_id) = scope.path.group else {
        return Err(AppError::Invalid(medgrid_domain::Invalid::one(
            medgrid_domain::FieldError::new(
                "scope",
                "no_group",
                "匹配在医疗集团内进行，您的账号不属于任何集团",
                "matching runs within a medical group; this account belongs to none",
            ),
        )));
    };
    let candidates = state.store.match_candidates(group_id, d).await?;
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        let mut person = state.store.person(c.resident_id).await?;
        if authorize(&caller.principal, Action::PatientRead, &person.path()).is_ok() {
            mask_person(&mut person);
            out.push((c, person));
        }
    }
    caller
        .audit_read(
            "patient.match",
            "Patient",
            format!("{} candidates", out.len()),
            scope.path,
        )
        .await?;
    Ok(out)
}

async fn group_path(state: &AppState, group_id: Id) -> Result<OrgPath, AppError> {
    Ok(state.store.group(group_id).await?.path())
}

/// The group's reviews in `status` (open by default).
pub async fn reviews(
    state: &AppState,
    caller: &Caller,
    group_id: Id,
    status: Option<&str>,
) -> Result<Vec<MatchReview>, AppError> {
    let path = group_path(state, group_id).await?;
    caller.allow(Action::PatientIndexReview, &path).await?;
    if let Some(s) = status {
        if !["open", "same", "not_same", "withdrawn"].contains(&s) {
            return Err(AppError::Invalid(medgrid_domain::Invalid::one(
                medgrid_domain::FieldError::new(
                    "status",
                    "unknown",
                    "状态须为 open、same、not_same 或 withdrawn",
                    "must be open, same, not_same or withdrawn",
                ),
            )));
        }
    }
    let list = state.store.match_reviews(group_id, status, 200).await?;
    // The queue names the persons in doubt: a read of patient data like any other.
    caller
        .audit_read(
            "match_review.list",
            "Patient",
            format!("{} reviews {}", list.len(), status.unwrap_or("open")),
            path,
        )
        .await?;
    Ok(list)
}

/// One review with both sides, masked unless `full`; audited as a read of both persons.
pub async fn review(
    state: &AppState,
    caller: &Caller,
    id: Id,
    full: bool,
) -> Result<ReviewDetail, AppError> {
    let mut d = state.store.review_detail(id).await?;
    let path = group_path(state, d.review.group_id).await?;
    caller.allow(Action::PatientIndexReview, &path).await?;
    caller
        .audit_read(
            if full {
                "match_review.read.identifiers"
            } else {
                "match_review.read"
            },
            "Patient",
            format!("{},{}", d.record.resident_id, d.candidate.id),
            path,
        )
        .await?;
    if !full {
        mask_record(&mut d.record);
        mask_person(&mut d.candidate);
        d.candidate_records.iter_mut().for_each(mask_record);
    }
    Ok(d)
}

pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: Id,
    verdict: Verdict,
) -> Result<MatchReview, AppError> {
    let d = state.store.review_detail(id).await?;
    caller
        .allow(
            Action::PatientIndexReview,
            &group_path(state, d.review.group_id).await?,
        )
        .await?;
    Ok(state
        .store
        .decide_review(&caller.actor, id, verdict)
        .await?)
}

/// Merges `merged_id` into `kept_id` (both of one group the caller reviews for).
pub async fn merge(
    state: &AppState,
    caller: &Caller,
    kept_id: Id,
    merged_id: Id,
    reason: &str,
) -> Result<Id, AppError> {
    let kept = state.store.person(kept_id).await?;
    caller
        .allow(
            Action::PatientIndexReview,
            &group_path(state, kept.group_id).await?,
        )
        .await?;
    Ok(state
        .store
        .merge_residents(&caller.actor, kept_id, merged_id, reason)
        .await?)
}

pub async fn unmerge(
    state: &AppState,
    caller: &Caller,
    person_id: Id,
    merge_id: Id,
) -> Result<(), AppError> {
    let person = state.store.person(person_id).await?;
    caller
        .allow(
            Action::PatientIndexReview,
            &group_path(state, person.group_id).await?,
        )
        .await?;
    let view = state.store.person_view(person_id).await?;
    if !view.merges.iter().any(|m| m.id == merge_id) {
        return Err(AppError::NotFound);
    }
    Ok(state.store.unmerge(&caller.actor, merge_id).await?)
}
