//! The operator's rooms from the command line: `--room` takes the fields
//! of a `POST /api/rooms` body as `key=value` pairs, e.g.
//! `id=duel,mode=tron,map=maze,tick_rate=30`. Such a room is persistent
//! (it never closes for being idle) unless it says `persistent=false`.

use protocol::api::CreateRoom;

/// Parses one `--room` value; the error says what is wrong, for `--help`.
pub fn parse(spec: &str) -> Result<CreateRoom, String> {
    let mut body = serde_json::Map::new();
    body.insert("persistent".into(), true.into());
    for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(format!("expected key=value, got {pair:?}"));
        };
        let (key, value) = (key.trim(), value.trim());
        // Numbers and booleans as such (names always as strings), anything
        // else as a string; serde then checks each field as it checks an
        // HTTP body.
        let value = if matches!(key, "id" | "map" | "mode") {
            value.into()
        } else if let Ok(n) = value.parse::<u64>() {
            n.into()
        } else if let Ok(b) = value.parse::<bool>() {
            b.into()
        } else {
            value.into()
        };
        body.insert(key.to_string(), value);
    }
    if !body.contains_key("id") {
        return Err("a room needs an id (id=NAME)".into());
    }
    serde_json::from_value(body.into()).map_err(|e| format!("{spec:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_reads_like_a_request_and_is_persistent_by_default() {
        let r = parse("id=duel, mode=tron,map=maze,tick_rate=30,max_players=4").unwrap();
        assert_eq!(r.id.as_deref(), Some("duel"));
        assert_eq!(r.mode, Some(protocol::Mode::Tron));
        assert_eq!(r.map.as_deref(), Some("maze"));
        assert_eq!((r.tick_rate, r.max_players), (Some(30), Some(4)));
        assert!(r.persistent);
        assert!(!parse("id=a,persistent=false").unwrap().persistent);
        assert_eq!(parse("id=2026").unwrap().id.as_deref(), Some("2026"));
    }

    #[test]
    fn bad_specs_say_why() {
        assert!(parse("mode=tron").unwrap_err().contains("id"));
        assert!(parse("id=a,colour=red").unwrap_err().contains("colour"));
        assert!(
            parse("id=a,tick_rate=fast")
                .unwrap_err()
                .contains("tick_rate")
        );
        assert!(parse("id=a,tron").unwrap_err().contains("key=value"));
    }
}
