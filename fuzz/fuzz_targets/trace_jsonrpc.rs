#![no_main]
//! The jsonrpc trace reader on arbitrary bytes.

include!("read_trace.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_trace(Format::JsonRpc, data));
