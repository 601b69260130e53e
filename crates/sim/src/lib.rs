//! The synthetic city: a deterministic population of a loaded layout and a year (or more) of
//! its care, for the demo, tests and benchmarks. The same layout, seed and parameters give the
//! same rows byte for byte.
//!
//! Rows are produced once, by `generate`, into any `SinkFactory`: CSV files, Parquet files or
//! the databases' bulk paths. Every table is described in `schema`.

pub mod activity;
pub mod catalog;
pub mod city;
pub mod csv_out;
pub mod mpi;
pub mod output;
pub mod parquet_out;
pub mod population;
pub mod rng;
pub mod schema;
pub mod staff;
pub mod table;
pub mod tables;

pub use city::{generate, Manifest, Params, Progress};
pub use output::{write_files, Format};
pub use population::{Population, Resident};
pub use table::{Column, Kind, Schema, Sink, SinkError, SinkFactory};
