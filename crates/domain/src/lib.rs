//! medgrid's domain: the types and rules of a tight-knit medical group.
//!
//! Nothing here does IO, SQL, HTTP or async: the edges parse input into these types, the
//! rules here decide, and the store persists what was decided.

pub mod access;
pub mod assessment;
pub mod attachment;
pub mod capacity;
pub mod codes;
pub mod error;
pub mod indicator;
pub mod insurance;
pub mod mask;
pub mod org;
pub mod referral;
pub mod table_file;

pub use error::{FieldError, Invalid};
