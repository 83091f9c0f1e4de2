//! Any bytes as an event stream, whole and in chunks (`protocol::fuzz::sse`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzz::sse(data);
});
