//! Sanitising text that came from a player before it reaches any terminal.
//!
//! Names and chat lose control characters (C0, C1, DEL, so every ANSI/OSC
//! escape loses its ESC and becomes inert text), bidi overrides, isolates
//! and marks, zero-width and other invisible characters (joiners,
//! variation selectors, tags, Hangul fillers), runs of combining marks
//! beyond two on one letter ("Zalgo" text that spills over other lines),
//! and are cut to a number of characters.

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 16;
/// Longest chat line, in characters.
pub const MAX_CHAT_CHARS: usize = 200;

/// Most combining marks kept on one base character.
pub const MAX_MARKS: usize = 2;

/// True for characters that must never be printed from player input.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM/RLM
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
            | '\u{061C}' // Arabic letter mark (a bidi mark)
            | '\u{FEFF}' // BOM / zero-width no-break space
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
            | '\u{00AD}' // soft hyphen
            | '\u{034F}' // combining grapheme joiner
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors, vowel separator
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers (blank "names")
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels (invisible)
            | '\u{E0000}'..='\u{E007F}' // tag characters
        )
}

/// True for combining marks: drawn on the character before them.
pub fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}' // combining diacritical marks
        | '\u{0483}'..='\u{0489}' // Cyrillic combining marks
        | '\u{1AB0}'..='\u{1AFF}' // combining diacritical marks extended
        | '\u{1DC0}'..='\u{1DFF}' // combining diacritical marks supplement
        | '\u{20D0}'..='\u{20FF}' // combining marks for symbols
        | '\u{FE20}'..='\u{FE2F}' // combining half marks
    )
}

/// Removes unsafe characters, folds whitespace runs to one space, trims,
/// keeps at most [`MAX_MARKS`] combining marks per character (none at the
/// start or after a space), and keeps at most `max_chars` characters.
pub fn sanitize_line(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let mut count = 0;
    let mut pending_space = false;
    // Marks on the last kept character; `None` when there is no base for one.
    let mut marks: Option<usize> = None;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if is_unsafe(c) {
            continue;
        }
        if is_combining(c) {
            match marks.as_mut() {
                Some(n) if *n < MAX_MARKS && !pending_space && count < max_chars => {
                    *n += 1;
                    out.push(c);
                    count += 1;
                }
                _ => {}
            }
            continue;
        }
        marks = Some(0);
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

/// `s` with every unsafe character (and line break) written as a Rust
/// `\u{..}` escape, for log lines: nothing is lost, nothing is obeyed by
/// the terminal that shows the log.
pub fn escape_unsafe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) || c.is_control()) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) || c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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
        assert_eq!(
            sanitize_name("\u{3164}\u{115F}"),
            "player",
            "Hangul fillers"
        );
        assert_eq!(sanitize_chat("a\u{061C}b\u{FE0F}c"), "abc");
    }

    #[test]
    fn log_escaping_keeps_everything_but_obeys_nothing() {
        assert_eq!(escape_unsafe("plain"), "plain");
        assert_eq!(
            escape_unsafe("a\x1b[2J\u{202E}b\n"),
            "a\\u{1b}[2J\\u{202e}b\\u{a}"
        );
    }

    #[test]
    fn combining_marks_stay_on_their_letter_and_zalgo_is_trimmed() {
        assert_eq!(
            sanitize_name("Zoe\u{0308}"),
            "Zoe\u{0308}",
            "one mark is a letter"
        );
        let zalgo = format!("a{}b", "\u{0336}".repeat(50));
        assert_eq!(sanitize_chat(&zalgo), "a\u{0336}\u{0336}b");
        assert_eq!(sanitize_chat("\u{0301}x"), "x", "a mark without a letter");
        assert_eq!(sanitize_chat("a \u{0301}b"), "a b", "nor after a space");
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

        #[test]
        fn names_are_safe_short_and_never_empty(s in any::<String>()) {
            let n = sanitize_name(&s);
            prop_assert!(!n.is_empty());
            prop_assert!(n.chars().count() <= MAX_NAME_CHARS);
            prop_assert!(n.chars().all(|c| !is_unsafe(c) && !c.is_control()));
            prop_assert!(!n.starts_with(' ') && !n.ends_with(' '));
            prop_assert_eq!(sanitize_name(&n), n.clone(), "idempotent");
        }

        #[test]
        fn hostile_mixes_come_out_inert(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("\x1b[2J".to_string()),
                    Just("\x1b]52;c;cHduZWQ=\x07".to_string()),
                    Just("\u{9b}31m".to_string()),
                    Just("\u{202E}".to_string()),
                    Just("\u{2067}".to_string()),
                    Just("\u{200D}".to_string()),
                    Just("\u{3164}".to_string()),
                    Just("\u{0301}\u{0301}\u{0301}".to_string()),
                    Just("\r\n".to_string()),
                    "[a-z]{0,3}",
                ],
                0..12,
            )
        ) {
            let s: String = parts.concat();
            for out in [sanitize_chat(&s), sanitize_name(&s)] {
                let bad = ['\x1b', '\u{9b}', '\r', '\n', '\x07'];
                prop_assert!(!out.contains(bad), "{:?}", out);
                prop_assert!(out.chars().all(|c| !is_unsafe(c)), "{:?}", out);
                let mut run = 0;
                for c in out.chars() {
                    run = if is_combining(c) { run + 1 } else { 0 };
                    prop_assert!(run <= MAX_MARKS, "{:?}", out);
                }
            }
        }
    }
}
