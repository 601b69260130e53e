//! Indicator computation for the cockpit and the assessment of members: the measures kept
//! from the platform's facts, the cube that holds them by unit, department and month, and the
//! evaluation of the indicator library's formulas over any scope and period.
//!
//! Pure computation: the store feeds facts in and keeps the cube; nothing here does IO.

pub mod cube;
pub mod evaluate;
pub mod fact;
pub mod measure;

pub use cube::{Builder, Cell, Cube, Span, Tally};
pub use evaluate::{evaluate, Evaluation, Rollup};
pub use measure::Measure;
