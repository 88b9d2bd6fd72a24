//! Rendering untrusted text for humans.
//!
//! HR values are checked on the way in, but a terminal also shows what Cliq
//! says (names, emails, error messages) and what the mirror holds. One
//! unsafe character in a plan or status table (ESC starting an ANSI
//! sequence, a bidi override reversing a column, a NUL) can hide or forge
//! what an operator reviews, so every human-readable output goes through
//! [`escape`] (one value) or [`escape_lines`] (a whole report).

use std::borrow::Cow;
use std::fmt::Write as _;

/// A character that must never reach a terminal or a single-line field as
/// itself: C0 controls (tab and newline included), DEL, C1 controls, the
/// bidi embeddings and overrides (U+202A–U+202E) and isolates
/// (U+2066–U+2069), and the Unicode line and paragraph separators.
pub(crate) fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{2028}'
        | '\u{2029}')
}

/// The Unicode name of an unsafe character's code point, for messages.
pub(crate) fn describe(c: char) -> String {
    let name = match c {
        '\0' => " NUL",
        '\u{7}' => " BEL",
        '\t' => " TAB",
        '\n' => " LF",
        '\r' => " CR",
        '\u{1b}' => " ESC",
        '\u{7f}' => " DEL",
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => " bidi control",
        _ => "",
    };
    format!("U+{:04X}{name}", c as u32)
}

/// `s` with every unsafe character written as `\u{…}` (a backslash is
/// doubled only when something was escaped, so safe text is unchanged).
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A multi-line report: each line escaped, the line breaks kept.
pub(crate) fn escape_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let lines: Vec<Cow<'_, str>> = s.split('\n').map(escape).collect();
    Cow::Owned(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_characters_are_escaped_and_safe_text_is_untouched() {
        assert!(matches!(escape("Zoë 李 a\\b"), Cow::Borrowed(_)));
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("x\u{202e}y\0\\"), "x\\u{202e}y\\u{0}\\\\");
        assert_eq!(escape_lines("a\tb\nc\u{7}"), "a\\u{9}b\nc\\u{7}");
        assert_eq!(escape_lines("a\nb\n"), "a\nb\n");
        assert_eq!(describe('\u{1b}'), "U+001B ESC");
    }
}
