#![no_main]
//! The Cline task history and Cline 4 session readers on arbitrary bytes.

include!("read_trace.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_trace(Format::Cline, data));
