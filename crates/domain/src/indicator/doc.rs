//! docs/indicators.md, written from the shipped library (a test keeps the two in step).

use super::{Formula, Library};

/// The library as Markdown: every indicator with its definition, formula, target and source.
pub fn markdown(lib: &Library) -> String {
    let mut out = format!(
        "# The indicator library (指标库)\n\n\
         Written from `crates/domain/src/indicator/library.json`, version {}; a test keeps this \
         page in step with it. Each value is computed exactly from the platform's facts as \
         numerator ÷ denominator (integers), judged against the target in force at the end of \
         the period (the library's, or the group's own from the month it set one), and shown \
         rounded half away from zero to two decimals. Flows (visits, referrals, prescriptions, \
         follow-ups, discharges) add up the months of a period; stocks (residents, contracts, \
         patients under management, physicians) are read at its last month with data.\n\n",
        lib.version
    );
    out.push_str("| id | 指标 | formula | target / amber | requirement | source |\n| --- | --- | --- | --- | --- | --- |\n");
    for i in &lib.indicators {
        let formula = match &i.formula {
            Formula::Ratio {
                numerator,
                denominator,
                factor,
            } if *factor == 1 => format!("`{numerator}` ÷ `{denominator}`"),
            Formula::Ratio {
                numerator,
                denominator,
                factor,
            } => format!("`{numerator}` ÷ `{denominator}` × {factor}"),
            Formula::Growth { measure } => {
                format!("(`{measure}` − same months a year earlier) ÷ earlier × 100")
            }
        };
        let targets = i
            .versions
            .iter()
            .map(|v| {
                let op = match i.direction {
                    super::Direction::Higher => "≥",
                    super::Direction::Lower => "≤",
                };
                format!("{op}{}{} / {} (from {})", v.target, i.unit, v.amber, v.from)
            })
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            i.id, i.name_zh, formula, targets, i.requirement, i.source
        ));
    }
    out.push_str("\n## Definitions\n\n");
    for i in &lib.indicators {
        out.push_str(&format!(
            "### {} — {} (`{}`)\n\n{}\n\n{}\n\n",
            i.name_zh, i.name_en, i.id, i.definition_zh, i.definition_en
        ));
        if let Some(n) = &i.national_definition {
            out.push_str(&format!("National definition followed: {n}\n\n"));
        }
    }
    out.push_str(
        "## Not computed yet\n\n\
         The seeds also name the case-mix index (CMI), the share of level-3/4 operations, \
         patient satisfaction and the basic public-health project score (R11.1, R8.4). The \
         platform holds no facts for them yet (no procedure grades, surveys or project \
         scores), so they are not in the library rather than shown with invented values.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_indicators_md_is_written_from_the_library() {
        let lib = super::super::Library::shipped().unwrap();
        let expected = super::markdown(&lib);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/indicators.md");
        if std::env::var_os("MEDGRID_BLESS").is_some() {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/indicators.md is out of date: rerun with MEDGRID_BLESS=1"
        );
    }
}
