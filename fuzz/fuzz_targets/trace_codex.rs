#![no_main]
//! The Codex rollout reader on arbitrary bytes.

include!("read_trace.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_trace(Format::Codex, data));
