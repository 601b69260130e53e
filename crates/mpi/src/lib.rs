//! The patient index engine (一码一卡通): one person behind the records the group's units
//! hold. Values are prepared by kind ([`field`]), compared in levels on characters and, for
//! Chinese names, on pinyin readings ([`compare`], [`pinyin`]); a Fellegi–Sunter model
//! ([`model`]) estimated without labels ([`em`]) weighs the levels; blocking ([`block`])
//! keeps the comparisons few; [`linkage`] runs it all over whole files.
//!
//! The engine holds no database and knows no unit: the store keeps persons and links, and
//! the same engine deduplicates any file given on the command line.

pub mod block;
pub mod compare;
pub mod em;
pub mod field;
pub mod index;
pub mod linkage;
pub mod model;
pub mod pinyin;
pub mod score;

pub use field::{FieldKind, Value};
pub use index::{Candidate, Decision, Index};
pub use linkage::{run, Column, Dataset, Link, LinkageError, Options, Outcome, Scorer};
pub use model::Params;
pub use score::{Comparator, FieldScore, PairScore};
