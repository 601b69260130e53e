//! The synthetic city: a deterministic population of a loaded layout, for the demo, tests and
//! benchmarks. The same layout, seed and size give the same files byte for byte.
//!
//! So far: departments and practitioners of every unit; family-doctor teams ("1+1+1");
//! residents with households, valid citizen IDs, names, phones, addresses in their primary
//! unit's area, insurance, and the key populations (hypertension, diabetes, pregnancy with its
//! five-colour grade, severe mental illness; children and the elderly by age); and their
//! family-doctor contracts.

pub mod output;
pub mod population;
pub mod rng;
pub mod staff;
pub mod tables;

pub use output::{write_csv, Manifest};
pub use population::{Population, Resident};
