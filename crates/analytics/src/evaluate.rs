//! Indicator values from the cube: sum a scope's units, then apply the formula.

use std::collections::{HashMap, HashSet};

use medgrid_domain::indicator::{Formula, Indicator, Month, Period, Value};
use serde::Serialize;

use crate::cube::Cube;
use crate::measure::Measure;

/// A scope's cells summed over its units: measure by month.
#[derive(Debug, Clone, Default)]
pub struct Rollup {
    sums: HashMap<(Measure, Month), i64>,
    /// The months with data: a period reaching beyond them is counted over the months it
    /// has, and a comparison with months before them has nothing to compare with.
    first: Option<Month>,
    last: Option<Month>,
}

impl Rollup {
    /// Sums the cells of `units` (all of the cube's units when `None`), for one department or
    /// for the units as a whole.
    pub fn new(cube: &Cube, units: Option<&HashSet<i64>>, department: Option<&str>) -> Rollup {
        let department = department.unwrap_or("");
        let mut sums = HashMap::new();
        for (cell, v) in &cube.cells {
            if cell.department != department || units.is_some_and(|u| !u.contains(&cell.unit)) {
                continue;
            }
            *sums.entry((cell.measure, cell.month)).or_insert(0) += v;
        }
        Rollup {
            sums,
            first: None,
            last: None,
        }
    }

    /// Limits the rollup to the months `[first, last]` that have data.
    pub fn within(mut self, first: Month, last: Month) -> Rollup {
        self.first = Some(first);
        self.last = Some(last);
        self
    }

    fn months(&self, period: Period) -> impl Iterator<Item = Month> + '_ {
        period
            .months()
            .filter(move |m| self.last.is_none_or(|l| *m <= l))
    }

    /// A measure over a period: flows add their months, stocks are read at the period's last
    /// month with data.
    pub fn total(&self, measure: Measure, period: Period) -> i64 {
        self.total_shifted(measure, period, 0)
    }

    /// The same months `shift` months away (−12: a year earlier); `None` when those months
    /// lie before the data begins.
    fn total_shifted(&self, measure: Measure, period: Period, shift: i32) -> i64 {
        if measure.is_stock() {
            // A period wholly after the data has no stock to read, like its flows.
            if self.last.is_some_and(|l| period.first() > l) {
                return 0;
            }
            let last = self.last.map_or(period.last(), |l| l.min(period.last()));
            return self.at(measure, last.plus(shift));
        }
        self.months(period)
            .map(|m| self.at(measure, m.plus(shift)))
            .sum()
    }

    /// Whether the months a year before the period's are covered by the data.
    fn has_year_before(&self, period: Period) -> bool {
        self.first.is_none_or(|f| period.first().plus(-12) >= f)
    }

    fn at(&self, measure: Measure, month: Month) -> i64 {
        self.sums.get(&(measure, month)).copied().unwrap_or(0)
    }
}

/// A measure the library names that the cube does not keep: a library error, reported with
/// the indicator rather than guessed around.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("indicator {indicator} names unknown measure {measure}")]
pub struct UnknownMeasure {
    pub indicator: String,
    pub measure: String,
}

/// An indicator's value in a period with everything needed to explain it.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub period: Period,
    pub value: Value,
    /// What the numerator and denominator count (for growth: the measure now and a year ago).
    pub numerator: Measure,
    pub denominator: Measure,
    /// The period the denominator is taken from when it is not `period` (growth).
    pub compared_with: Option<Period>,
}

fn measure(indicator: &Indicator, name: &str) -> Result<Measure, UnknownMeasure> {
    Measure::parse(name).ok_or_else(|| UnknownMeasure {
        indicator: indicator.id.clone(),
        measure: name.to_owned(),
    })
}

/// The indicator's exact value over the rollup's scope in `period`.
pub fn evaluate(
    indicator: &Indicator,
    period: Period,
    rollup: &Rollup,
) -> Result<Evaluation, UnknownMeasure> {
    Ok(match &indicator.formula {
        Formula::Ratio {
            numerator,
            denominator,
            factor,
        } => {
            let n = measure(indicator, numerator)?;
            let d = measure(indicator, denominator)?;
            Evaluation {
                period,
                value: Value::ratio(rollup.total(n, period), rollup.total(d, period), *factor),
                numerator: n,
                denominator: d,
                compared_with: None,
            }
        }
        Formula::Growth { measure: name } => {
            let m = measure(indicator, name)?;
            let before = period.year_ago();
            // The same months a year earlier, so that a year under way is compared with the
            // same months of the last; nothing to compare with before the data begins.
            let earlier = if rollup.has_year_before(period) {
                rollup.total_shifted(m, period, -12)
            } else {
                0
            };
            Evaluation {
                period,
                value: Value::growth(rollup.total(m, period), earlier),
                numerator: m,
                denominator: m,
                compared_with: Some(before),
            }
        }
    })
}

/// Checks that every formula of the library names a measure the cube keeps.
pub fn check_library(library: &medgrid_domain::indicator::Library) -> Result<(), UnknownMeasure> {
    for i in &library.indicators {
        for name in i.formula.measures() {
            measure(i, name)?;
        }
    }
    Ok(())
}
