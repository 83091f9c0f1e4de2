//! Writes the fuzzers' seed corpora (`fuzz/seeds/<target>/`) from the
//! examples of docs/PROTOCOL.md, so they follow the protocol version:
//! every JSON message as itself (`codec_json`), its bincode encoding
//! (`codec_bincode`), every tick in both formats behind the `delta`
//! target's format byte, and every SSE example (`sse_parser`).
//!
//! `cargo run -p protocol --example fuzz_seeds` (from the workspace root).

use std::path::Path;

use protocol::codec::{decode, encode};
use protocol::{ClientMsg, Format, ServerMsg};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");

fn fenced(info: &str) -> Vec<String> {
    let fence = format!("\n```{info}\n");
    let mut out = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let Some(end) = body.find("```") else { break };
        out.push(body[..end].trim().to_string());
        rest = &body[end + 3..];
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn main() -> std::io::Result<()> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
    let mut n = 0;
    for (tag, server) in [("client", false), ("server", true)] {
        for (i, ex) in fenced(&format!("json {tag}")).iter().enumerate() {
            // Compact, as a peer sends it.
            let json = if server {
                let msg: ServerMsg = decode(Format::Json, ex.as_bytes()).expect("doc example");
                if let ServerMsg::Tick(_) = &msg {
                    for (f, pick) in [(Format::Json, 0u8), (Format::Bincode, 1u8)] {
                        let ServerMsg::Tick(t) = &msg else { continue };
                        let mut bytes = vec![pick];
                        bytes.extend_from_slice(&encode(f, t.as_ref()));
                        write(&seeds.join("delta"), &format!("{tag}-{i}-{pick}"), &bytes)?;
                    }
                }
                write(
                    &seeds.join("codec_bincode"),
                    &format!("{tag}-{i}"),
                    &encode(Format::Bincode, &msg),
                )?;
                encode(Format::Json, &msg)
            } else {
                let msg: ClientMsg = decode(Format::Json, ex.as_bytes()).expect("doc example");
                write(
                    &seeds.join("codec_bincode"),
                    &format!("{tag}-{i}"),
                    &encode(Format::Bincode, &msg),
                )?;
                encode(Format::Json, &msg)
            };
            write(&seeds.join("codec_json"), &format!("{tag}-{i}"), &json)?;
            n += 1;
        }
    }
    for (i, ex) in fenced("sse").iter().enumerate() {
        // The sse target's first byte picks how the stream is cut.
        let mut bytes = vec![7u8];
        bytes.extend_from_slice(ex.as_bytes());
        bytes.extend_from_slice(b"\n\n");
        write(&seeds.join("sse_parser"), &format!("doc-{i}"), &bytes)?;
    }
    eprintln!("wrote seeds for {n} messages under {}", seeds.display());
    Ok(())
}
