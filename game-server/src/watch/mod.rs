//! The live ANSI view of a room for `curl -N /rooms/{room}/watch`.

pub mod render;
pub mod stream;
