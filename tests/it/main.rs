//! The integration tests: one binary, one module per area.

mod cli;
mod engine;
mod extras;
mod generate;
mod hostile;
mod html;
mod intercept;
mod intercept_go;
mod json_schema;
mod merge;
mod part_summaries;
mod policy;
mod proptest_reference;
mod replay;
mod suite;
mod sweep;
mod trace;
mod trace_agents;
mod trace_otel;
