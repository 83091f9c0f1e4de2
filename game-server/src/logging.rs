//! Log output that no client can write escapes into: every field value is
//! formatted, then every control, escape, bidi and invisible character in
//! it is written as a `\u{..}` escape ([`protocol::text::escape_unsafe`]).
//! That covers what our code logs and what dependencies log at `trace`
//! (tungstenite prints whole frames there), whatever `RUST_LOG` asks for.

use std::fmt::Write as _;

use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// The field formatter of every log line: `name=value` pairs (the message
/// bare), each value escaped.
pub fn safe_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, field, value| {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        let text = protocol::text::escape_unsafe(&text);
        if field.name() == "message" {
            write!(w, "{text}")
        } else {
            write!(w, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

/// Installs the process-wide subscriber of the `game-server` binary:
/// `RUST_LOG` (default `info`) to stderr with [`safe_fields`].
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(safe_fields())
        .with_writer(std::io::stderr)
        .init();
}
