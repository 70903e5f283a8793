#![no_main]
//! The Claude Code transcript reader on arbitrary bytes.

include!("read_trace.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_trace(Format::ClaudeCode, data));
