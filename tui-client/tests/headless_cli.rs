//! The real `tui-client --headless` binary: one JSON document on stdout,
//! exit code 0 only when every bot connected without desyncs or errors.

use std::process::Command;

fn headless(args: &[&str]) -> (std::process::ExitStatus, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_tui-client"))
        .args([
            "--headless",
            "--report",
            "json",
            "--tick-rate",
            "60",
            "--seed",
            "3",
        ])
        .args(args)
        .output()
        .expect("run tui-client");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 report");
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status, report)
}

#[test]
fn headless_json_report_from_the_binary_with_an_embedded_server() {
    let (status, r) = headless(&["--bots", "3", "--bot", "mix", "--duration", "2"]);
    assert!(status.success(), "{r:#}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["embedded"], true);
    assert_eq!(r["room"], "lobby");
    let bots = r["bots"].as_array().expect("bots");
    assert_eq!(bots.len(), 3);
    for b in bots {
        assert_eq!(b["transport"], "ws");
        assert_eq!(b["format"], "bincode");
        assert!(b["ticks_seen"].as_u64().unwrap() > 0, "{b:#}");
        assert_eq!(b["desyncs"], 0);
        assert!(b["errors"].as_array().unwrap().is_empty(), "{b:#}");
    }
    let kinds: Vec<_> = bots.iter().map(|b| b["bot"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["greedy", "survival", "random"]);
    assert_eq!(r["totals"]["bots"], 3);
}

#[test]
fn headless_exit_code_is_non_zero_when_bots_cannot_play() {
    // A port nothing listens on: every bot ends unreachable.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let (status, r) = headless(&[
        "--server",
        &server,
        "--bots",
        "2",
        "--duration",
        "5",
        "--format",
        "json",
    ]);
    assert!(!status.success());
    assert_eq!(r["ok"], false);
    for b in r["bots"].as_array().expect("bots") {
        assert_eq!(b["connected"], false);
        assert_eq!(b["format"], "json");
        assert!(
            b["errors"][0].as_str().unwrap().contains("unreachable"),
            "{b:#}"
        );
    }
}

#[test]
fn transport_all_spreads_the_bots_and_reports_each_transport_conditioned() {
    let (status, r) = headless(&[
        "--bots",
        "4",
        "--bot",
        "survival",
        "--duration",
        "3",
        "--transport",
        "all",
        "--poll-interval-ms",
        "100",
        "--conditioner",
        "latency=40ms",
    ]);
    assert!(status.success(), "{r:#}");
    assert_eq!(r["conditioner"], "+40 ms each way");
    let transports: Vec<_> = r["transports"]
        .as_array()
        .expect("per-transport figures")
        .iter()
        .map(|t| t["transport"].as_str().unwrap())
        .collect();
    assert_eq!(transports, ["ws", "sse", "longpoll", "poll"]);
    for t in r["transports"].as_array().unwrap() {
        // A round trip crosses the 40 ms delay twice.
        let rtt = t["rtt"]["p50_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("{t:#}"));
        assert!(rtt >= 80.0, "{t:#}");
        for key in ["p50_ms", "p95_ms", "p99_ms"] {
            assert!(t["frame_age"][key].as_f64().unwrap() >= 35.0, "{t:#}");
        }
        assert!(t["bytes_down"].as_u64().unwrap() > 0, "{t:#}");
        assert!(t["requests"].as_u64().unwrap() >= 1, "{t:#}");
    }
    let roles: Vec<_> = r["bots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["player", "spectator", "player", "player"]);
    assert!(r["bots"][0]["lag"]["rtt"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn a_bad_conditioner_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tui-client"))
        .args(["--headless", "--conditioner", "loss=5%"])
        .output()
        .expect("run tui-client");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown setting `loss`"), "{err}");
}
