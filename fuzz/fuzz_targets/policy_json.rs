#![no_main]
//! The policy parser and compiler of the json dialect on arbitrary text.

use mcpsim::policy::{Dialect, LoadOptions, check_policy_str};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    for strict_dialect in [false, true] {
        let opts = LoadOptions {
            strict_dialect,
            dialect: Some(Dialect::PolicyLayer),
        };
        let _ = check_policy_str(src, &opts);
    }
});
