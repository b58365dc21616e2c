//! Text from outside — scanner titles, Kubernetes events, a model's answer, alert fields — made safe to
//! print on a terminal. Unchecked, an escape sequence in an alert's output can move the cursor, clear
//! the screen or recolour what follows, and a newline can start a line that reads "Verdict: PASSED":
//! the output could lie about the verdict.
//!
//! Control characters become visible escapes (`\u{1b}`), line breaks and tabs a space, and the
//! bidirectional overrides that reorder what is shown ("Trojan Source") visible escapes too. The
//! renderers apply this to whole values ([`sanitized`]) before they add their own colours.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// `text` with every character that could change how a terminal shows it made visible.
pub fn safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() || is_bidi_control(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

/// A copy of `value` with every string in it passed through [`safe`] (keys included). A value that
/// does not survive the round trip (it cannot, for the types rendered here) is returned as it was.
pub fn sanitized<T: Serialize + DeserializeOwned + Clone>(value: &T) -> T {
    fn walk(v: Value) -> Value {
        match v {
            Value::String(s) => Value::String(safe(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(walk).collect()),
            Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (safe(&k), walk(v))).collect()),
            other => other,
        }
    }
    serde_json::to_value(value).ok().map(walk).and_then(|v| serde_json::from_value(v).ok()).unwrap_or_else(|| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_line_breaks_cannot_reach_the_terminal() {
        let forged = "CVE-1\u{1b}[2K\r\nVerdict:   PASSED\u{1b}[0m\u{202e}txt.exe";
        let shown = safe(forged);
        assert!(!shown.chars().any(|c| c.is_control() || is_bidi_control(c)), "{shown:?}");
        assert_eq!(shown, "CVE-1\\u{1b}[2K  Verdict:   PASSED\\u{1b}[0m\\u{202e}txt.exe");
    }

    #[test]
    fn ordinary_text_is_unchanged() {
        for s in ["Terminal shell in container", "openssl 3.5.1-r0 → 3.5.2-r0", "Ünïcödé ✓", ""] {
            assert_eq!(safe(s), s);
        }
    }

    #[test]
    fn a_report_is_sanitized_in_every_string() {
        let v = serde_json::json!({"reasons": [{"message": "a\u{1b}[1mb"}], "n": 3});
        let s = sanitized(&v);
        assert_eq!(s["reasons"][0]["message"], "a\\u{1b}[1mb");
        assert_eq!(s["n"], 3);
    }
}
