//! `tickwire-load`: a load tool for Tickwire servers (see the library docs
//! and BENCHMARKS.md for the scenarios that use it).

use anyhow::Context as _;
use clap::Parser as _;
use tickwire_load::{Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = Config::parse();
    let json_path = cfg.json.clone();
    let json_stdout = cfg.json_stdout;
    let report = run(cfg).await.context("load run")?;
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(p) = json_path {
        std::fs::write(&p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    if json_stdout {
        println!("{json}");
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
