//! Any bytes as a map file (`protocol::fuzz::map`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzz::map(data);
});
