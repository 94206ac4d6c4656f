//! The options' JSON wire format: arbitrary text parses to valid options or an
//! `invalid_options` error; valid options survive a serialise/parse round trip unchanged.
#![no_main]

use imgest::{ErrorCode, Options};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Options::from_json(text) {
        Ok(options) => {
            let json = serde_json::to_string(&options).expect("serialisable");
            let again = Options::from_json(&json).expect("round trip parses");
            assert_eq!(options, again);
        }
        Err(e) => assert_eq!(e.code(), ErrorCode::InvalidOptions),
    }
});
