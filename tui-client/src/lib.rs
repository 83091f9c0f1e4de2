//! Tickwire's terminal client as a library: the client-side view of a room,
//! the client stack (transports, reconnect), bots, headless mode, the
//! embedded server and the ratatui UI. The `tui-client` binary wires them up.

pub mod bot;
pub mod client;
pub mod embedded;
pub mod headless;
pub mod lag;
pub mod ui;
pub mod view;
