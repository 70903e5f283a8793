#![no_main]
//! The agentgateway trace reader on arbitrary bytes.

include!("read_trace.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| read_trace(Format::AgentGatewayLog, data));
