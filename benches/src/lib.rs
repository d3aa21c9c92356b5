//! Helpers for Palisade's benchmark table (`cargo bench -p palisade-bench`): statistics,
//! readings from `/proc`, the V8 Benchmark Suite v7 driver, and markdown formatting. The phases
//! themselves live in `benches/table.rs`.
#![forbid(unsafe_code)]

pub mod light;
pub mod report;
pub mod stats;
pub mod sys;
pub mod v8v7;
