//! A JSON printer byte-compatible with libxl's yajl generator in
//! "beautify" mode: 4-space indentation, `"key": value`, empty containers
//! printed as an opening bracket, an empty line and the closing bracket,
//! `/` not escaped, non-ASCII kept as UTF-8. Key order is kept as parsed
//! (serde_json's `preserve_order`).

use serde_json::Value;

/// Print `v` as libxl writes its userdata files (without the trailing
/// newline and NUL, which the caller adds).
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v, 0);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_value(out: &mut String, v: &Value, level: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push_str("[\n");
            if items.is_empty() {
                out.push('\n');
            }
            for (i, item) in items.iter().enumerate() {
                indent(out, level + 1);
                write_value(out, item, level + 1);
                if i + 1 < items.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, level);
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("{\n");
            if map.is_empty() {
                out.push('\n');
            }
            let n = map.len();
            for (i, (k, item)) in map.iter().enumerate() {
                indent(out, level + 1);
                write_string(out, k);
                out.push_str(": ");
                write_value(out, item, level + 1);
                if i + 1 < n {
                    out.push(',');
                }
                out.push('\n');
            }
            indent(out, level);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prints_like_yajl() {
        let text =
            "{\n    \"a\": {\n\n    },\n    \"b\": [\n        0\n    ],\n    \"k\": \"/x/y\"\n}";
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(to_string(&v), text);
    }
}
