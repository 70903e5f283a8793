//! The integration tests: one binary, one module per area.

mod cli;
mod engine;
mod json_schema;
mod policy;
mod proptest_reference;
mod trace;
mod trace_otel;
