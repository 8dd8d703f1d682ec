#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scribe_fuzz::http_request(data));
