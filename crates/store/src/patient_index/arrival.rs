//! A unit's record on arrival: checked, matched against the group's persons by blocking keys,
//! and filed — linked, a new person, or a new person with the doubt queued.

use super::*;
use crate::{read, write};

/// Checked record fields.
struct Checked {
    local_record_no: String,
    issuer: Option<String>,
    id_type: String,
    id_number: String,
    id_valid: bool,
    citizen_id: Option<String>,
    insurance_card: String,
    demographics: Demographics,
}

fn check_draft(draft: &RecordDraft) -> Result<Checked, Invalid> {
    let mut inv = Invalid::default();
    let text = |inv: &mut Invalid, field: &'static str, raw: &str, max: usize, required: bool| {
        let t = raw.trim();
        if required && t.is_empty() {
            inv.push(FieldError::new(field, "required", "必填", "required"));
        } else if t.chars().count() > max {
            inv.push(FieldError::new(
                field,
                "too_long",
                format!("不能超过 {max} 个字符"),
                format!("at most {max} characters"),
            ));
        }
        t.to_owned()
    };
    let local_record_no = text(
        &mut inv,
        "local_record_no",
        &draft.local_record_no,
        64,
        true,
    );
    let issuer = draft
        .issuer
        .as_deref()
        .map(|i| text(&mut inv, "issuer", i, 100, false))
        .filter(|i| !i.is_empty());
    let id_type = draft
        .id_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("citizen_id")
        .to_owned();
    if !ID_TYPES.contains(&id_type.as_str()) {
        inv.push(FieldError::new(
            "id_type",
            "unknown",
            "证件类型须为 citizen_id、passport、hk_macao_permit 或 other",
            "must be citizen_id, passport, hk_macao_permit or other",
        ));
    }
    let id_number = text(
        &mut inv,
        "id_number",
        draft.id_number.as_deref().unwrap_or_default(),
        40,
        false,
    );
    let insurance_card = text(
        &mut inv,
        "insurance_card",
        draft.insurance_card.as_deref().unwrap_or_default(),
        40,
        false,
    );
    let name = text(&mut inv, "name", &draft.name, 50, true);
    let sex_value = Value::new(FieldKind::Sex, &draft.sex);
    // Stored in the registry's words, so that a new person reads like every other resident.
    let sex = match &*sex_value.norm {
        "M" => "male".to_owned(),
        "F" => "female".to_owned(),
        _ => {
            inv.push(FieldError::new(
                "sex",
                "invalid",
                "性别须为 男/女（M/F）",
                "must be M or F (男/女)",
            ));
            String::new()
        }
    };
    let birth = Value::new(FieldKind::BirthDate, &draft.birth_date);
    let birth_date = match birth.date {
        Some(d) if d <= crate::local_now().date() => d.format("%Y-%m-%d").to_string(),
        Some(_) => {
            inv.push(FieldError::new(
                "birth_date",
                "future",
                "出生日期不能晚于今天",
                "cannot be in the future",
            ));
            String::new()
        }
        None => {
            inv.push(FieldError::new(
                "birth_date",
                "invalid",
                "出生日期须为 YYYY-MM-DD",
                "must be a date, YYYY-MM-DD",
            ));
            String::new()
        }
    };
    let phone = Value::new(FieldKind::Phone, draft.phone.as_deref().unwrap_or_default());
    if phone.norm.len() > 20 {
        inv.push(FieldError::new(
            "phone",
            "invalid",
            "电话号码过长",
            "too many digits for a phone number",
        ));
    }
    let address = text(
        &mut inv,
        "address",
        draft.address.as_deref().unwrap_or_default(),
        200,
        false,
    );
    // An invalid citizen ID is no reason to refuse a record (the patient is in front of the
    // desk); it is kept as typed, flagged, and never taken as proof.
    let (id_valid, citizen_id) = if id_type == "citizen_id" && !id_number.is_empty() {
        let v = Value::new(FieldKind::CitizenId, &id_number);
        (v.valid, v.valid.then(|| v.norm.to_string()))
    } else {
        (false, None)
    };
    inv.into_result(Checked {
        local_record_no,
        issuer,
        id_type,
        demographics: Demographics {
            citizen_id: citizen_id.clone().unwrap_or_default(),
            name,
            sex,
            birth_date,
            phone: phone.norm.to_string(),
            address,
        },
        id_number,
        id_valid,
        citizen_id,
        insurance_card,
    })
}

/// A row that shares a blocking key with the arriving record.
struct CandidateRow {
    resident_id: Id,
    record_id: Option<Id>,
    demographics: Demographics,
}

/// Rows of the group sharing a blocking key with `d`: the same valid citizen ID, phone,
/// birth date or name, among the residents' registered demographics and the units' records.
macro_rules! candidate_rows {
    ($ex:expr, $group_id:expr, $d:expr) => {{
        let d: &Demographics = $d;
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let rows = sqlx::query(
            "SELECT id AS resident_id, NULL AS record_id, citizen_id, name, sex, birth_date, phone, address \
             FROM resident WHERE group_id = $1 AND merged_into_id IS NULL \
             AND (citizen_id = $2 OR phone = $3 OR birth_date = $4 OR name = $5) \
             UNION ALL \
             SELECT resident_id, id AS record_id, COALESCE(citizen_id, ''), name, sex, birth_date, phone, address \
             FROM patient_record WHERE group_id = $1 \
             AND (citizen_id = $2 OR phone = $3 OR birth_date = $4 OR name = $5)",
        )
        .bind($group_id)
        .bind(some(&d.citizen_id))
        .bind(some(&d.phone))
        .bind(day(&d.birth_date))
        .bind(some(&d.name))
        .fetch_all($ex)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(CandidateRow {
                resident_id: r.try_get("resident_id")?,
                record_id: r.try_get("record_id")?,
                demographics: Demographics {
                    citizen_id: r.try_get("citizen_id")?,
                    name: r.try_get("name")?,
                    sex: r.try_get("sex")?,
                    birth_date: r.try_get::<NaiveDate, _>("birth_date")?.to_string(),
                    phone: r.try_get("phone")?,
                    address: r.try_get("address")?,
                },
            });
        }
        out
    }};
}

/// Persons among `rows` at or above the review threshold, the most likely first; each person
/// speaks through its best-agreeing row. Persons in `excluded` were judged not to be this one.
fn rank(
    c: &Comparator,
    d: &Demographics,
    rows: &[CandidateRow],
    excluded: &[Id],
) -> (Vec<Candidate>, Vec<MatchCandidate>) {
    let v = c.prepare(&d.raw());
    let mut best: HashMap<Id, f64> = HashMap::new();
    for row in rows {
        if excluded.contains(&row.resident_id) {
            continue;
        }
        let w = c.prepare(&row.demographics.raw());
        let p = c.probability(c.pattern(&v, |k| &w[k]), |_| None);
        let e = best.entry(row.resident_id).or_insert(0.0);
        if p > *e {
            *e = p;
        }
    }
    let mut ranked: Vec<(Id, f64)> = best
        .into_iter()
        .filter(|(_, p)| *p >= c.review_threshold())
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    // The engine's candidates name persons by their place in `ranked` (and so in the
    // returned list), not by resident id, which need not fit its `u32`.
    let engine = ranked
        .iter()
        .enumerate()
        .map(|(i, (_, p))| Candidate {
            person: u32::try_from(i).unwrap_or(u32::MAX),
            record: 0,
            probability: *p,
        })
        .collect();
    let out = ranked
        .iter()
        .map(|(id, p)| MatchCandidate {
            resident_id: *id,
            probability: *p,
            grade: if *p >= c.link_threshold() {
                "certain"
            } else {
                "possible"
            },
        })
        .collect();
    (engine, out)
}

impl Store {
    /// Matches a unit's record on arrival and files it: linked to the person found, a new
    /// person when nobody is close, or a new person with the doubt queued for review. A
    /// record sent again under the same local number is matched again with its new values,
    /// except that a reviewer's decision stands and a link is never silently moved (a
    /// different best match is queued for review instead).
    pub async fn arrive_record(
        &self,
        actor: &Actor,
        draft: &RecordDraft,
    ) -> Result<Arrival, StoreError> {
        let checked = check_draft(draft)?;
        let c = comparator()?;
        let now = crate::now();
        write!(self, |p| {
            let mut tx = p.begin().await?;
            lock_index!(self, tx);
            let unit = sqlx::query(
                "SELECT u.id, u.group_id, u.city_id, u.code, g.code AS grid_code FROM unit u \
                 LEFT JOIN grid g ON g.id = u.grid_id WHERE u.id = $1",
            )
            .bind(draft.unit_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(unit) = unit else {
                return Err(not_found("unit_id", "机构不存在", "no such unit"));
            };
            let group_id: Option<Id> = unit.try_get("group_id")?;
            let Some(group_id) = group_id else {
                return Err(StoreError::Invalid(Invalid::one(FieldError::new(
                    "unit_id",
                    "not_in_group",
                    "该机构不属于任何医疗集团",
                    "the unit belongs to no medical group",
                ))));
            };
            let city_id: Id = unit.try_get("city_id")?;
            let unit_code: String = unit.try_get("code")?;
            let grid_code: Option<String> = unit.try_get("grid_code")?;
            let issuer = checked
                .issuer
                .clone()
                .unwrap_or_else(|| format!("{unit_code}-HIS"));
            let d = &checked.demographics;

            let existing = sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE p.unit_id = $1 AND p.local_record_no = $2"
            ))
            .bind(draft.unit_id)
            .bind(&checked.local_record_no)
            .fetch_optional(&mut *tx)
            .await?;
            let existing = match existing {
                Some(r) => Some(record_from_row!(r)),
                None => None,
            };
            if let Some(e) = &existing {
                let same = e.id_type == checked.id_type
                    && e.id_number == checked.id_number
                    && e.insurance_card == checked.insurance_card
                    && e.name == d.name
                    && e.sex == d.sex
                    && e.birth_date.to_string() == d.birth_date
                    && e.phone == d.phone
                    && e.address == d.address;
                if same {
                    tx.commit().await?;
                    return Ok(Arrival {
                        record: e.clone(),
                        candidates: Vec::new(),
                        unchanged: true,
                    });
                }
            }
            // Persons a reviewer said this record is not.
            let mut excluded: Vec<Id> = Vec::new();
            if let Some(e) = &existing {
                let rows = sqlx::query(
                    "SELECT resident_id FROM match_review WHERE record_id = $1 AND status = 'not_same'",
                )
                .bind(e.id)
                .fetch_all(&mut *tx)
                .await?;
                for r in rows {
                    excluded.push(r.try_get("resident_id")?);
                }
            }
            let rows = candidate_rows!(&mut *tx, group_id, d);
            // The record's own row is no evidence about itself.
            let rows: Vec<CandidateRow> = rows
                .into_iter()
                .filter(|r| existing.as_ref().is_none_or(|e| r.record_id != Some(e.id)))
                .collect();
            let (engine, candidates) = rank(c, d, &rows, &excluded);
            let decision = c.decide(&engine);
            let resident_of =
                |best: &Candidate| candidates.get(best.person as usize).map(|m| m.resident_id);

            let (resident_id, state, probability, review): (
                Id,
                LinkState,
                Option<f64>,
                Vec<&MatchCandidate>,
            ) = match (&existing, &decision) {
                // A settled record keeps its person; so does one whose person is still a
                // link-strength match.
                (Some(e), _) if e.link_state == LinkState::Manual => {
                    (e.resident_id, LinkState::Manual, e.probability, Vec::new())
                }
                (Some(e), Decision::Link(best)) if resident_of(best) == Some(e.resident_id) => (
                    e.resident_id,
                    LinkState::Matched,
                    Some(best.probability),
                    Vec::new(),
                ),
                (Some(e), Decision::New) => (e.resident_id, e.link_state, None, Vec::new()),
                (Some(e), _) => (
                    e.resident_id,
                    LinkState::Review,
                    e.probability,
                    candidates
                        .iter()
                        .filter(|m| m.resident_id != e.resident_id)
                        .collect(),
                ),
                (None, Decision::Link(best)) => (
                    resident_of(best).unwrap_or(0),
                    LinkState::Matched,
                    Some(best.probability),
                    Vec::new(),
                ),
                (None, Decision::New) => (0, LinkState::Created, None, Vec::new()),
                (None, Decision::Review(_)) => {
                    (0, LinkState::Review, None, candidates.iter().collect())
                }
            };
            let resident_id = if resident_id == 0 {
                // A new person, registered where the record came from.
                let row = sqlx::query(
                    "INSERT INTO resident (id, household_id, citizen_id, name, sex, birth_date, \
                     phone, address, unit_id, group_id, grid_code, insurance, hypertension, \
                     diabetes, severe_mental_illness, maternal_risk) \
                     SELECT COALESCE(MAX(id), 0) + 1, COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, $6, \
                     $7, $8, $9, '', FALSE, FALSE, FALSE, NULL FROM resident RETURNING id",
                )
                .bind(&d.citizen_id)
                .bind(&d.name)
                .bind(&d.sex)
                .bind(day(&d.birth_date))
                .bind(&d.phone)
                .bind(&d.address)
                .bind(draft.unit_id)
                .bind(group_id)
                .bind(grid_code.as_deref().unwrap_or_default())
                .fetch_one(&mut *tx)
                .await?;
                row.try_get::<Id, _>("id")?
            } else {
                resident_id
            };
            let record_id: Id = match &existing {
                Some(e) => {
                    sqlx::query(
                        "UPDATE patient_record SET issuer = $2, id_type = $3, id_number = $4, \
                         id_valid = $5, citizen_id = $6, insurance_card = $7, name = $8, sex = $9, \
                         birth_date = $10, phone = $11, address = $12, link_state = $13, \
                         probability = $14, model_version = $15, updated_at = $16 WHERE id = $1",
                    )
                    .bind(e.id)
                    .bind(&issuer)
                    .bind(&checked.id_type)
                    .bind(&checked.id_number)
                    .bind(checked.id_valid)
                    .bind(checked.citizen_id.as_deref())
                    .bind(&checked.insurance_card)
                    .bind(&d.name)
                    .bind(&d.sex)
                    .bind(day(&d.birth_date))
                    .bind(&d.phone)
                    .bind(&d.address)
                    .bind(state.as_str())
                    .bind(probability)
                    .bind(&c.params().version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    e.id
                }
                None => {
                    let row = sqlx::query(
                        "INSERT INTO patient_record (group_id, unit_id, local_record_no, issuer, \
                         id_type, id_number, id_valid, citizen_id, insurance_card, name, sex, \
                         birth_date, phone, address, resident_id, link_state, probability, \
                         model_version, received_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, \
                         $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19) \
                         RETURNING id",
                    )
                    .bind(group_id)
                    .bind(draft.unit_id)
                    .bind(&checked.local_record_no)
                    .bind(&issuer)
                    .bind(&checked.id_type)
                    .bind(&checked.id_number)
                    .bind(checked.id_valid)
                    .bind(checked.citizen_id.as_deref())
                    .bind(&checked.insurance_card)
                    .bind(&d.name)
                    .bind(&d.sex)
                    .bind(day(&d.birth_date))
                    .bind(&d.phone)
                    .bind(&d.address)
                    .bind(resident_id)
                    .bind(state.as_str())
                    .bind(probability)
                    .bind(&c.params().version)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    row.try_get("id")?
                }
            };
            for m in &review {
                // A pair already settled stays settled; an open one is refreshed.
                sqlx::query(
                    "INSERT INTO match_review (group_id, record_id, resident_id, probability, status, \
                     created_at) VALUES ($1, $2, $3, $4, 'open', $5) \
                     ON CONFLICT (record_id, resident_id) DO UPDATE SET probability = excluded.probability \
                     WHERE match_review.status = 'open'",
                )
                .bind(group_id)
                .bind(record_id)
                .bind(m.resident_id)
                .bind(m.probability)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let target = OrgPath {
                city: city_id,
                grid: None,
                group: Some(group_id),
                unit: Some(draft.unit_id),
            };
            audit_insert!(
                &mut *tx,
                &AuditEntry {
                    actor,
                    action: if existing.is_some() {
                        "patient_record.update"
                    } else {
                        "patient_record.create"
                    },
                    resource_type: "Patient",
                    resource_id: Some(resident_id.to_string()),
                    target: Some(target),
                    outcome: Outcome::Ok,
                    detail: Some(format!(
                        "record {record_id} {} {}; candidates {}",
                        checked.local_record_no,
                        state.as_str(),
                        candidates
                            .iter()
                            .map(|m| format!("{}:{:.3}", m.resident_id, m.probability))
                            .collect::<Vec<_>>()
                            .join(",")
                    )),
                }
            )?;
            let r = sqlx::query(&format!(
                "SELECT {RECORD_COLUMNS} {RECORD_FROM} WHERE p.id = $1"
            ))
            .bind(record_id)
            .fetch_one(&mut *tx)
            .await?;
            let record = record_from_row!(r);
            tx.commit().await?;
            Ok(Arrival {
                record,
                candidates,
                unchanged: false,
            })
        })
    }

    /// Persons of `group_id` that `d` may be, most likely first; reads only (FHIR `$match`).
    pub async fn match_candidates(
        &self,
        group_id: Id,
        d: &Demographics,
    ) -> Result<Vec<MatchCandidate>, StoreError> {
        let c = comparator()?;
        // Blocking keys compare normalised values: the same forms the records are stored in.
        let prepared = c.prepare(&d.raw());
        let norm = Demographics {
            citizen_id: if prepared[0].valid {
                prepared[0].norm.to_string()
            } else {
                String::new()
            },
            name: d.name.trim().to_owned(),
            sex: prepared[2].norm.to_string(),
            birth_date: prepared[3]
                .date
                .map(|x| x.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            phone: prepared[4].norm.to_string(),
            address: d.address.trim().to_owned(),
        };
        let rows = read!(self, |p| candidate_rows!(p, group_id, &norm));
        Ok(rank(c, &norm, &rows, &[]).1)
    }
}
