//! Any bytes as every JSON message a peer can send (`protocol::fuzz::codec`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    protocol::fuzz::codec(protocol::Format::Json, data);
});
