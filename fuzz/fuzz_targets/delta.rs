//! Any bytes as a tick frame, in both formats, applied to a small world
//! (`protocol::fuzz::delta`): applying a hostile delta never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((&pick, rest)) = data.split_first() {
        let format = if pick & 1 == 0 {
            protocol::Format::Json
        } else {
            protocol::Format::Bincode
        };
        protocol::fuzz::delta(format, rest);
    }
});
