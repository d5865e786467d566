//! Building tool results the same way in every toolset.
//!
//! Results carry structured content for programs and a short text for models; errors are
//! `isError` results (never JSON-RPC errors, which clients hide from the model); and output is
//! bounded, saying so when it was cut so the model can narrow its request.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

/// A successful result with `value` as structured content and `text` as its rendering.
///
/// `value` should serialize to a JSON object (MCP's `structuredContent`); if it cannot be
/// serialized at all, the result is an error saying so.
pub fn ok_json<T: Serialize + ?Sized>(value: &T, text: impl Into<String>) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(structured) => {
            let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
            result.structured_content = Some(structured);
            result
        }
        Err(err) => error(format!("the result could not be encoded as JSON: {err}")),
    }
}

/// A successful result carrying only text.
pub fn ok_text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// A failed call: `isError: true` with `message` for the model to act on.
pub fn error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

/// Cuts `text` to at most `max_bytes` bytes at a character boundary.
///
/// Returns the text and whether it was cut. A cut text ends with a line
/// `[truncated: N of M bytes shown; narrow the request]`, which comes on top of the `N` bytes
/// kept.
pub fn cap_text(text: &str, max_bytes: usize) -> (String, bool) {
    if text.len() <= max_bytes {
        return (text.to_owned(), false);
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = &text[..end];
    let mut out = String::with_capacity(end + 64);
    out.push_str(kept);
    if !kept.is_empty() && !kept.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "[truncated: {end} of {total} bytes shown; narrow the request]",
        total = text.len()
    ));
    (out, true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(cap_text("hello", 5), ("hello".to_owned(), false));
        assert_eq!(cap_text("", 0), (String::new(), false));
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let (out, cut) = cap_text("abcdefghij", 4);
        assert!(cut);
        assert_eq!(
            out,
            "abcd\n[truncated: 4 of 10 bytes shown; narrow the request]"
        );
    }

    #[test]
    fn cut_never_splits_a_character() {
        // "é" is two bytes and "€" three: a cut inside either moves back to its start.
        let text = "aé€z";
        assert_eq!(text.len(), 7);
        let (out, cut) = cap_text(text, 2);
        assert!(cut);
        assert!(
            out.starts_with("a\n[truncated: 1 of 7 bytes shown"),
            "{out}"
        );
        let (out, _) = cap_text(text, 5);
        assert!(
            out.starts_with("aé\n[truncated: 3 of 7 bytes shown"),
            "{out}"
        );
        let (out, _) = cap_text(text, 6);
        assert!(
            out.starts_with("aé€\n[truncated: 6 of 7 bytes shown"),
            "{out}"
        );
    }

    #[test]
    fn a_zero_cap_keeps_only_the_marker() {
        let (out, cut) = cap_text("€", 0);
        assert!(cut);
        assert_eq!(out, "[truncated: 0 of 3 bytes shown; narrow the request]");
    }

    #[test]
    fn results_have_the_expected_shape() {
        let ok = ok_json(&json!({"pong": true}), "pong");
        assert_eq!(ok.is_error, Some(false));
        assert_eq!(ok.structured_content, Some(json!({"pong": true})));
        assert_eq!(ok.content[0].as_text().unwrap().text, "pong");

        let err = error("table x does not exist");
        assert_eq!(err.is_error, Some(true));
        assert_eq!(
            err.content[0].as_text().unwrap().text,
            "table x does not exist"
        );
    }
}
