//! The tables of the synthetic city. docs/synthetic-city.md is written from these, and the
//! database migrations (`resident`, `encounter`, …) follow them column for column.

use crate::table::{Column, Kind, Schema};

const fn col(name: &'static str, db: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column {
        name,
        db,
        kind,
        nullable: false,
        doc,
    }
}

const fn opt(name: &'static str, db: &'static str, kind: Kind, doc: &'static str) -> Column {
    Column {
        name,
        db,
        kind,
        nullable: true,
        doc,
    }
}

use Kind::*;

pub const UNITS: Schema = Schema {
    file: "units",
    db: "",
    doc: "Member units of the layout (the registry holds them in the databases).",
    columns: &[
        col("unit_code", "", Text, "unit code, unique in the city"),
        col("name", "", Text, "legal name"),
        col(
            "role",
            "",
            Text,
            "lead, secondary, primary, village, public_health, cooperating",
        ),
        col(
            "level",
            "",
            Text,
            "hospital level: tertiary, secondary, primary, unrated",
        ),
        opt("group_code", "", Text, "medical group"),
        opt("grid_code", "", Text, "grid"),
        opt(
            "under_code",
            "",
            Text,
            "township hospital a village clinic belongs to",
        ),
        opt("division_code", "", Text, "GB/T 2260 county-level division"),
    ],
};

pub const DEPARTMENTS: Schema = Schema {
    file: "departments",
    db: "",
    doc: "Departments of every unit (the registry holds them in the databases).",
    columns: &[
        col("unit_code", "", Text, "unit"),
        col(
            "department_code",
            "",
            Text,
            "department code, unique in the unit",
        ),
        col("name", "", Text, "name"),
        col(
            "kind",
            "",
            Text,
            "outpatient, ward, medical_technology, public_health",
        ),
        opt("beds", "", Int, "beds of a ward"),
    ],
};

pub const PRACTITIONERS: Schema = Schema {
    file: "practitioners",
    db: "",
    doc: "Doctors and nurses (the registry holds them in the databases).",
    columns: &[
        col("practitioner_id", "", Int, "generated id, 1-based"),
        col(
            "licence_no",
            "",
            Text,
            "15-digit practising licence number (synthetic)",
        ),
        col("name", "", Text, "name"),
        col("sex", "", Text, "male, female"),
        col("title", "", Text, "professional title"),
        col("unit_code", "", Text, "registered unit"),
        opt("department_code", "", Text, "outpatient department"),
        opt(
            "other_sites",
            "",
            Text,
            "units of multi-site practice, separated by ';'",
        ),
    ],
};

pub const TEAMS: Schema = Schema {
    file: "teams",
    db: "team",
    doc: "Family-doctor teams of primary units, \"1+1+1\" (R3.1).",
    columns: &[
        col("team_id", "id", Int, "team id, 1-based"),
        col("group_code", "group_id", Group, "medical group"),
        col("unit_code", "unit_id", Unit, "primary unit"),
        col(
            "gp_id",
            "gp_id",
            Practitioner,
            "general practitioner who leads the team",
        ),
        col(
            "specialist_id",
            "specialist_id",
            Practitioner,
            "senior physician of a hospital of the group",
        ),
        col(
            "third_member_id",
            "third_member_id",
            Practitioner,
            "village doctor or nurse",
        ),
    ],
};

pub const RESIDENTS: Schema = Schema {
    file: "residents",
    db: "resident",
    doc: "Residents of the grids, one row per person.",
    columns: &[
        col("resident_id", "id", Int, "resident id, 1-based"),
        col("household_id", "household_id", Int, "household"),
        col(
            "citizen_id",
            "citizen_id",
            Text,
            "18-character citizen ID, valid per GB 11643",
        ),
        col("name", "name", Text, "name"),
        col("sex", "sex", Text, "male, female"),
        col("birth_date", "birth_date", Date, "date of birth"),
        col("phone", "phone", Text, "mobile number, 11 digits"),
        col(
            "address",
            "address",
            Text,
            "address in the primary unit's area",
        ),
        col(
            "unit_code",
            "unit_id",
            Unit,
            "primary unit whose area the resident lives in",
        ),
        col(
            "group_code",
            "group_id",
            Group,
            "medical group of that unit",
        ),
        col("grid_code", "grid_code", Text, "grid of that group"),
        col(
            "insurance",
            "insurance",
            Text,
            "employee (城镇职工) or resident (城乡居民)",
        ),
        col("hypertension", "hypertension", Flag, "has hypertension"),
        col("diabetes", "diabetes", Flag, "has type 2 diabetes"),
        col(
            "severe_mental_illness",
            "severe_mental_illness",
            Flag,
            "has a severe mental illness",
        ),
        opt(
            "maternal_risk",
            "maternal_risk",
            Text,
            "five-colour grade if pregnant: green, yellow, orange, red, purple",
        ),
    ],
};

pub const CONTRACTS: Schema = Schema {
    file: "contracts",
    db: "contract",
    doc: "Family-doctor contracts (R3.2).",
    columns: &[
        col("contract_id", "id", Int, "contract id, 1-based"),
        col("resident_id", "resident_id", Int, "resident"),
        col("group_code", "group_id", Group, "medical group"),
        col("team_id", "team_id", Int, "team"),
        col(
            "package",
            "package",
            Text,
            "basic, chronic_care, elderly_care, child_care, maternal_care, mental_health",
        ),
        col("signed_on", "signed_on", Date, "day signed"),
        col(
            "ends_on",
            "ends_on",
            Date,
            "day it ends (one year, renewable)",
        ),
    ],
};

pub const ENCOUNTERS: Schema = Schema {
    file: "encounters",
    db: "encounter",
    doc: "Outpatient, emergency and inpatient encounters.",
    columns: &[
        col("encounter_id", "id", Int, "encounter id, 1-based"),
        col("resident_id", "resident_id", Int, "resident"),
        col(
            "group_code",
            "group_id",
            Group,
            "the resident's medical group",
        ),
        opt(
            "unit_code",
            "unit_id",
            Unit,
            "unit where it took place; empty when out of region",
        ),
        opt(
            "department_code",
            "department_code",
            Text,
            "department of that unit",
        ),
        opt(
            "practitioner_id",
            "practitioner_id",
            Practitioner,
            "attending practitioner",
        ),
        col("kind", "kind", Text, "outpatient, emergency, inpatient"),
        col(
            "level",
            "level",
            Text,
            "hospital level of the place: tertiary, secondary, primary, unrated; out_of_region",
        ),
        col(
            "started_at",
            "started_at",
            Timestamp,
            "arrival or admission",
        ),
        col(
            "ended_at",
            "ended_at",
            Timestamp,
            "end of visit or discharge",
        ),
        col(
            "diagnosis",
            "diagnosis",
            Text,
            "principal diagnosis, ICD-10",
        ),
        col("diagnosis_name", "diagnosis_name", Text, "its name"),
        col(
            "in_region",
            "in_region",
            Flag,
            "inside the city (the denominator of the in-region rate)",
        ),
        col(
            "in_group",
            "in_group",
            Flag,
            "at a unit of the resident's own group",
        ),
        opt(
            "referral_id",
            "referral_id",
            Int,
            "referral that led to this encounter",
        ),
        col("total", "total_fen", Fixed(2), "total cost, yuan"),
        col(
            "insurance_paid",
            "insurance_paid_fen",
            Fixed(2),
            "paid by the insurance fund, yuan",
        ),
        col(
            "self_paid",
            "self_paid_fen",
            Fixed(2),
            "paid by the patient, yuan",
        ),
    ],
};

pub const REFERRALS: Schema = Schema {
    file: "referrals",
    db: "referral",
    doc: "Up- and down-referrals, linked to the encounter that prompted them and the one they caused.",
    columns: &[
        col("referral_id", "id", Int, "referral id, 1-based"),
        col("resident_id", "resident_id", Int, "resident"),
        col("group_code", "group_id", Group, "the resident's medical group"),
        col("direction", "direction", Text, "up, down"),
        col("priority", "priority", Text, "routine, urgent, green (green channel)"),
        col("from_unit_code", "from_unit_id", Unit, "referring unit"),
        opt("from_practitioner_id", "from_practitioner_id", Practitioner, "referring practitioner"),
        col("to_unit_code", "to_unit_id", Unit, "receiving unit"),
        opt("to_department_code", "to_department_code", Text, "receiving department"),
        col("diagnosis", "diagnosis", Text, "ICD-10"),
        col("requested_at", "requested_at", Timestamp, "when sent"),
        col("status", "status", Text, "completed, booked, cancelled, expired"),
        col("source_encounter_id", "source_encounter_id", Int, "encounter that prompted it"),
        opt("result_encounter_id", "result_encounter_id", Int, "encounter it caused"),
    ],
};

pub const FOLLOW_UPS: Schema = Schema {
    file: "follow_ups",
    db: "follow_up",
    doc: "Scheduled follow-ups of managed key populations; missed ones have no done_on.",
    columns: &[
        col("follow_up_id", "id", Int, "follow-up id, 1-based"),
        col("resident_id", "resident_id", Int, "resident"),
        col(
            "group_code",
            "group_id",
            Group,
            "the resident's medical group",
        ),
        col(
            "program",
            "program",
            Text,
            "hypertension, diabetes, severe_mental_illness, maternal, child",
        ),
        col("unit_code", "unit_id", Unit, "managing unit"),
        opt("team_id", "team_id", Int, "contracted team"),
        col("due_on", "due_on", Date, "scheduled day"),
        opt("done_on", "done_on", Date, "day done; empty when missed"),
        opt("method", "method", Text, "clinic, home, phone"),
        opt(
            "encounter_id",
            "encounter_id",
            Int,
            "the visit, for clinic follow-ups",
        ),
        opt("systolic", "systolic", Int, "mmHg"),
        opt("diastolic", "diastolic", Int, "mmHg"),
        opt("fasting_glucose", "fasting_glucose_x10", Fixed(1), "mmol/L"),
        opt(
            "controlled",
            "controlled",
            Flag,
            "the condition was under control",
        ),
    ],
};

pub const EXAMS: Schema = Schema {
    file: "exams",
    db: "exam",
    doc: "Exam orders, with the shared diagnostic centre that reported them.",
    columns: &[
        col("exam_id", "id", Int, "exam id, 1-based"),
        col("encounter_id", "encounter_id", Int, "ordering encounter"),
        col("resident_id", "resident_id", Int, "resident"),
        col(
            "group_code",
            "group_id",
            Group,
            "the resident's medical group",
        ),
        col(
            "ordering_unit_code",
            "ordering_unit_id",
            Unit,
            "unit that ordered it",
        ),
        opt(
            "center_unit_code",
            "center_unit_id",
            Unit,
            "shared centre that read it; empty when done locally",
        ),
        col("kind", "kind", Text, "lab, imaging, ecg"),
        col("item", "item", Text, "what was examined"),
        col("ordered_at", "ordered_at", Timestamp, "ordered"),
        col("reported_at", "reported_at", Timestamp, "reported"),
        col(
            "recognised",
            "recognised",
            Flag,
            "result recognised by another unit instead of repeating it",
        ),
    ],
};

pub const PRESCRIPTIONS: Schema = Schema {
    file: "prescriptions",
    db: "prescription",
    doc: "Outpatient prescription lines.",
    columns: &[
        col("prescription_id", "id", Int, "line id, 1-based"),
        col("encounter_id", "encounter_id", Int, "prescribing encounter"),
        col("resident_id", "resident_id", Int, "resident"),
        col(
            "group_code",
            "group_id",
            Group,
            "the resident's medical group",
        ),
        opt("unit_code", "unit_id", Unit, "prescribing unit"),
        col("drug_code", "drug_code", Text, "ATC code"),
        col("drug_name", "drug_name", Text, "generic name"),
        col(
            "essential",
            "essential",
            Flag,
            "on the national essential-medicines list",
        ),
        col(
            "days",
            "days",
            Int,
            "days supplied (long prescriptions up to 84)",
        ),
        col("amount", "amount_fen", Fixed(2), "yuan"),
    ],
};

pub const CLAIMS: Schema = Schema {
    file: "claims",
    db: "claim",
    doc: "Insurance settlement of every encounter.",
    columns: &[
        col("claim_id", "id", Int, "claim id, 1-based"),
        col("encounter_id", "encounter_id", Int, "settled encounter"),
        col("resident_id", "resident_id", Int, "resident"),
        col(
            "group_code",
            "group_id",
            Group,
            "the resident's medical group",
        ),
        opt(
            "unit_code",
            "unit_id",
            Unit,
            "unit paid; empty when out of region",
        ),
        col("fund", "fund", Text, "employee, resident"),
        col("kind", "kind", Text, "outpatient, emergency, inpatient"),
        col(
            "level",
            "level",
            Text,
            "hospital level of the place, or out_of_region",
        ),
        col(
            "in_group",
            "in_group",
            Flag,
            "at a unit of the resident's group (else outflow)",
        ),
        opt(
            "dip_group",
            "dip_group",
            Text,
            "DIP disease group of an inpatient case: ICD-10 and procedure",
        ),
        opt(
            "los_days",
            "los_days",
            Int,
            "length of stay of an inpatient case",
        ),
        col("total", "total_fen", Fixed(2), "total cost, yuan"),
        col(
            "eligible",
            "eligible_fen",
            Fixed(2),
            "within the policy scope, yuan",
        ),
        col(
            "deductible",
            "deductible_fen",
            Fixed(2),
            "deductible borne by the patient, yuan",
        ),
        col(
            "insurance_paid",
            "insurance_paid_fen",
            Fixed(2),
            "paid by the fund, yuan",
        ),
        col(
            "self_paid",
            "self_paid_fen",
            Fixed(2),
            "paid by the patient, yuan",
        ),
        col("settled_on", "settled_on", Date, "day settled"),
    ],
};

pub const MPI_RECORDS: Schema = Schema {
    file: "mpi_records",
    db: "",
    doc: "Patient records as member units hold them, with realistic errors (option --mpi-records).",
    columns: &[
        col("record_id", "", Int, "record id, 1-based"),
        col("unit_code", "", Text, "unit holding the record"),
        col("local_record_no", "", Text, "the unit's own record number"),
        opt(
            "citizen_id",
            "",
            Text,
            "citizen ID as recorded: may be missing, mistyped or 15-digit",
        ),
        col("name", "", Text, "name as recorded"),
        opt("sex", "", Text, "male, female"),
        opt("birth_date", "", Date, "date of birth as recorded"),
        opt("phone", "", Text, "phone as recorded"),
        opt("address", "", Text, "address as recorded"),
    ],
};

pub const MPI_TRUTH: Schema = Schema {
    file: "mpi_truth",
    db: "",
    doc: "Which resident each patient record belongs to, and what was changed.",
    columns: &[
        col("record_id", "", Int, "record"),
        col("resident_id", "", Int, "the true person"),
        opt("corruptions", "", Text, "changes made, separated by ';'"),
    ],
};

/// Every table, in the order they are written and loaded (referenced tables first).
pub const ALL: &[&Schema] = &[
    &UNITS,
    &DEPARTMENTS,
    &PRACTITIONERS,
    &TEAMS,
    &RESIDENTS,
    &CONTRACTS,
    &ENCOUNTERS,
    &REFERRALS,
    &FOLLOW_UPS,
    &EXAMS,
    &PRESCRIPTIONS,
    &CLAIMS,
    &MPI_RECORDS,
    &MPI_TRUTH,
];

/// Tables that go into the databases (the others are the registry's or test data).
pub fn loaded() -> impl Iterator<Item = &'static Schema> {
    ALL.iter().copied().filter(|s| !s.db.is_empty())
}

/// The reference of every table as Markdown, for docs/synthetic-city.md (a test keeps the
/// document in step with this module).
pub fn markdown() -> String {
    let mut out = String::new();
    for s in ALL {
        out.push_str(&format!("### `{}` — {}\n\n", s.file, s.doc));
        if s.db.is_empty() {
            out.push_str("Not loaded into the databases.\n\n");
        } else {
            out.push_str(&format!("Database table `{}`.\n\n", s.db));
        }
        out.push_str("| column | type | meaning | database column |\n| --- | --- | --- | --- |\n");
        for c in s.columns {
            let kind = match c.kind {
                Kind::Int => "integer".to_owned(),
                Kind::Text => "text".to_owned(),
                Kind::Date => "date `YYYY-MM-DD`".to_owned(),
                Kind::Timestamp => "timestamp `YYYY-MM-DD HH:MM:SS`".to_owned(),
                Kind::Fixed(scale) => {
                    format!("decimal, {scale} places (database: integer × 10^{scale})")
                }
                Kind::Flag => "`1` / `0`".to_owned(),
                Kind::Unit => "unit code (database: unit id)".to_owned(),
                Kind::Group => "group code (database: group id)".to_owned(),
                Kind::Practitioner => "practitioner id (database: registry id)".to_owned(),
            };
            let kind = if c.nullable {
                format!("{kind}, may be empty")
            } else {
                kind
            };
            let db = if s.db.is_empty() || c.db.is_empty() {
                String::new()
            } else {
                format!("`{}`", c.db)
            };
            out.push_str(&format!("| `{}` | {kind} | {} | {db} |\n", c.name, c.doc));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "../../docs/synthetic-city.md";
    const BEGIN: &str = "<!-- schema:begin -->\n";
    const END: &str = "<!-- schema:end -->";

    /// `MEDGRID_BLESS=1 cargo test -p medgrid-sim schema` rewrites the section.
    #[test]
    fn the_schema_section_of_the_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
        let doc = std::fs::read_to_string(&path).unwrap();
        let start = doc.find(BEGIN).expect("begin marker") + BEGIN.len();
        let end = doc.find(END).expect("end marker");
        let want = markdown();
        if std::env::var_os("MEDGRID_BLESS").is_some() {
            let new = format!("{}{want}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, new).unwrap();
            return;
        }
        assert_eq!(
            &doc[start..end],
            want,
            "run MEDGRID_BLESS=1 cargo test -p medgrid-sim schema"
        );
    }

    #[test]
    fn every_column_name_is_unique_within_its_table() {
        for s in ALL {
            let mut names: Vec<&str> = s.columns.iter().map(|c| c.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), s.columns.len(), "{}", s.file);
        }
    }
}
