//! Sanitising text that came from a player before it reaches any terminal.
//!
//! Names and chat lose control characters (C0, C1, DEL, so every ANSI/OSC
//! escape loses its ESC and becomes inert text), bidi overrides and isolates,
//! zero-width and other invisible formatting characters, and are cut to a
//! number of characters.

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 16;
/// Longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 200;

/// True for characters that must never be printed from player input.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM/RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{FEFF}' // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
            | '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{180E}' // Mongolian vowel separator
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

/// Removes unsafe characters, folds whitespace runs to one space, trims,
/// and keeps at most `max_chars` characters.
pub fn sanitize_line(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let mut count = 0;
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if is_unsafe(c) {
            continue;
        }
        if pending_space {
            if count + 1 >= max_chars {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= max_chars {
            break;
        }
        out.push(c);
        count += 1;
    }
    out
}

/// A player name: sanitised, at most [`MAX_NAME_CHARS`], never empty.
pub fn sanitize_name(s: &str) -> String {
    let n = sanitize_line(s, MAX_NAME_CHARS);
    if n.is_empty() {
        "player".to_string()
    } else {
        n
    }
}

/// A chat line: sanitised, at most [`MAX_CHAT_CHARS`].
pub fn sanitize_chat(s: &str) -> String {
    sanitize_line(s, MAX_CHAT_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strips_escapes_and_invisibles() {
        assert_eq!(sanitize_name("\x1b[31mred\x1b[0m"), "[31mred[0m");
        assert_eq!(sanitize_chat("a\x1b]0;pwned\x07b"), "a]0;pwnedb");
        assert_eq!(sanitize_chat("evil\u{202E}txt.exe"), "eviltxt.exe");
        assert_eq!(sanitize_chat("zero\u{200B}width\u{FEFF}"), "zerowidth");
        assert_eq!(sanitize_chat("  a \t\n b  "), "a b");
        assert_eq!(sanitize_chat("\u{9b}31m"), "31m", "C1 CSI is removed");
        assert_eq!(sanitize_name("\x00\x1b"), "player");
    }

    #[test]
    fn cuts_to_length_in_characters() {
        assert_eq!(
            sanitize_name("ééééééééééééééééééééé").chars().count(),
            MAX_NAME_CHARS
        );
        assert_eq!(
            sanitize_chat(&"x".repeat(1000)).chars().count(),
            MAX_CHAT_CHARS
        );
    }

    proptest! {
        #[test]
        fn output_is_always_safe(s in any::<String>()) {
            let out = sanitize_chat(&s);
            prop_assert!(out.chars().all(|c| !is_unsafe(c)));
            prop_assert!(out.chars().count() <= MAX_CHAT_CHARS);
            prop_assert_eq!(sanitize_chat(&out), out.clone(), "idempotent");
        }
    }
}
