//! The lobby's HTTP calls (`GET`/`POST /api/rooms`), with errors as
//! sentences for the screen.

use std::time::Duration;

use protocol::api::{ApiError, CreateRoom, RoomInfo};

/// How long one lobby request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client for one server's HTTP API.
#[derive(Clone, Debug)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:7878`).
    pub fn new(base: &str) -> Api {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Api {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// `GET /api/rooms`.
    pub async fn rooms(&self) -> Result<Vec<RoomInfo>, String> {
        let resp = self
            .http
            .get(format!("{}/api/rooms", self.base))
            .send()
            .await
            .map_err(|e| format!("cannot list rooms: {}", short(&e)))?;
        answer(resp).await
    }

    /// `POST /api/rooms`.
    pub async fn create(&self, body: &CreateRoom) -> Result<RoomInfo, String> {
        let resp = self
            .http
            .post(format!("{}/api/rooms", self.base))
            .json(body)
            .send()
            .await
            .map_err(|e| format!("cannot create the room: {}", short(&e)))?;
        answer(resp).await
    }
}

async fn answer<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, String> {
    let status = resp.status();
    if status.is_success() {
        return resp
            .json::<T>()
            .await
            .map_err(|e| format!("unexpected answer: {}", short(&e)));
    }
    match resp.json::<ApiError>().await {
        Ok(e) => Err(format!("{} ({})", e.error, e.code)),
        Err(_) => Err(format!("server answered {status}")),
    }
}

/// The innermost cause: reqwest's top-level message names only the URL.
fn short(e: &reqwest::Error) -> String {
    let mut src: &dyn std::error::Error = e;
    while let Some(next) = src.source() {
        src = next;
    }
    src.to_string()
}
