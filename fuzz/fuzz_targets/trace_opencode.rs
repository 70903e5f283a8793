#![no_main]
//! The opencode event stream reader on arbitrary bytes.

include!("read_trace.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_trace(Format::OpenCode, data));
