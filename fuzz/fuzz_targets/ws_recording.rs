#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scribe_fuzz::ws_recording(data));
