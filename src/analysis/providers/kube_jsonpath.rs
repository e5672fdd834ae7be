//! Kubernetes JSONPath templates (`{$.data.ok}`, `{.items[?(@.name=="a")].v}`) translated to
//! RFC 9535 paths for `serde_json_path`, as the web provider's `jsonPath` field needs.
//!
//! Supported subset: one `{…}` expression making up the whole template; a leading `$` or `.`
//! (or neither); dotted names, including names with `-` or `/` (quoted on translation);
//! `[n]`, `[*]`, `[a:b]`, `['key']`, unions `['a','b']`, recursive descent `..`, and filters
//! `[?(@.x == "y")]` with `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`. Not supported (an error
//! naming the template): text outside the braces, several expressions, `range`/`end`.

use serde_json_path::JsonPath;
use thiserror::Error;

/// Why a template cannot be used; shown as the measurement message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonPathError {
    /// Valid JSONPath that this implementation does not support.
    #[error("unsupported jsonPath {template:?}: {reason}")]
    Unsupported {
        /// The template as written.
        template: String,
        /// What is not supported.
        reason: String,
    },
    /// Not a valid JSONPath template.
    #[error("invalid jsonPath {template:?}: {reason}")]
    Invalid {
        /// The template as written.
        template: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The default upstream uses when `jsonPath` is empty: the whole document.
use crate::api::defaults::DEFAULT_WEB_JSON_PATH as DEFAULT_JSON_PATH;

/// Parses a Kubernetes JSONPath template into an RFC 9535 path.
pub fn compile(template: &str) -> Result<JsonPath, JsonPathError> {
    let translated = translate(template)?;
    JsonPath::parse(&translated).map_err(|e| JsonPathError::Invalid {
        template: template.to_string(),
        reason: e.to_string(),
    })
}

/// The RFC 9535 text for a Kubernetes JSONPath template.
pub fn translate(template: &str) -> Result<String, JsonPathError> {
    let unsupported = |reason: &str| JsonPathError::Unsupported {
        template: template.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = template.trim();
    let trimmed = if trimmed.is_empty() {
        DEFAULT_JSON_PATH
    } else {
        trimmed
    };
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(|| unsupported("the template must be one {…} expression"))?
        .trim();
    if inner.contains("}{") || inner.starts_with("range") || inner == "end" {
        return Err(unsupported("only one expression is supported"));
    }
    let body = inner.strip_prefix('$').unwrap_or(inner);
    let mut out = String::from("$");
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    // A bare leading name (`{data.ok}`) reads as `.data.ok`.
    if chars.first().is_some_and(|c| is_name_char(*c)) {
        i = push_name(&chars, 0, &mut out);
    }
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                out.push_str("..");
                i += 2;
                if chars.get(i).is_some_and(|c| is_name_char(*c)) {
                    i = push_name_after_descent(&chars, i, &mut out);
                }
            }
            '.' => {
                i += 1;
                match chars.get(i) {
                    Some('*') => {
                        out.push_str(".*");
                        i += 1;
                    }
                    Some(c) if is_name_char(*c) => i = push_name(&chars, i, &mut out),
                    // `{.}` and `{$.}` are the whole document.
                    None => {}
                    Some(_) => return Err(unsupported("expected a name after `.`")),
                }
            }
            '[' => {
                let end = matching_bracket(&chars, i).ok_or_else(|| unsupported("unclosed `[`"))?;
                let content: String = chars[i + 1..end].iter().collect();
                out.push('[');
                out.push_str(&translate_filter(&content));
                out.push(']');
                i = end + 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => return Err(unsupported("unexpected character")),
        }
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '/')
}

/// Appends `.name` (or `['name']` when the name is not an RFC 9535 shorthand) and returns the
/// index after the name.
fn push_name(chars: &[char], start: usize, out: &mut String) -> usize {
    let end = name_end(chars, start);
    let name: String = chars[start..end].iter().collect();
    if is_shorthand(&name) {
        out.push('.');
        out.push_str(&name);
    } else {
        out.push_str(&format!("['{}']", name.replace('\'', "\\'")));
    }
    end
}

/// After `..` the shorthand has no dot (`$..name` or `$..['na-me']`).
fn push_name_after_descent(chars: &[char], start: usize, out: &mut String) -> usize {
    let end = name_end(chars, start);
    let name: String = chars[start..end].iter().collect();
    if is_shorthand(&name) {
        out.push_str(&name);
    } else {
        out.push_str(&format!("['{}']", name.replace('\'', "\\'")));
    }
    end
}

fn name_end(chars: &[char], start: usize) -> usize {
    let mut end = start;
    while end < chars.len() && is_name_char(chars[end]) {
        end += 1;
    }
    end
}

fn is_shorthand(name: &str) -> bool {
    let mut it = name.chars();
    it.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && it.all(|c| c.is_alphanumeric() || c == '_')
}

fn matching_bracket(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

/// Kubernetes writes filters as `?(@.a == 'x')`; RFC 9535 accepts the parenthesised form as
/// well, but names after `@.` may need quoting, so the filter is passed through with only
/// non-shorthand member names rewritten.
fn translate_filter(content: &str) -> String {
    let trimmed = content.trim();
    if !trimmed.starts_with('?') {
        return trimmed.to_string();
    }
    let chars: Vec<char> = trimmed.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
                i += 1;
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
                i += 1;
            }
            None if c == '.' && chars.get(i + 1).is_some_and(|n| is_name_char(*n)) => {
                i = push_name(&chars, i + 1, &mut out);
            }
            None => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn translation_table() {
        let cases = [
            ("{$}", "$"),
            ("", "$"),
            ("{.}", "$"),
            ("{$.data.ok}", "$.data.ok"),
            ("{.data.ok}", "$.data.ok"),
            ("{data.ok}", "$.data.ok"),
            ("{$.items[*].v}", "$.items[*].v"),
            ("{.items[0]}", "$.items[0]"),
            ("{.data.success-rate}", "$.data['success-rate']"),
            ("{..name}", "$..name"),
            ("{.items[?(@.name=='a')].v}", "$.items[?(@.name=='a')].v"),
            ("{.m['a.b']}", "$.m['a.b']"),
        ];
        for (template, expected) in cases {
            assert_eq!(translate(template).unwrap(), expected, "{template}");
        }
    }

    #[test]
    fn unsupported_templates_are_named() {
        let err = translate("ok: {.ok}").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unsupported jsonPath "ok: {.ok}": the template must be one {…} expression"#
        );
        assert!(translate("{.a}{.b}").is_err());
        assert!(translate("{range .items[*]}").is_err());
    }

    #[test]
    fn compiled_paths_find_values() {
        let doc = json!({"data": {"ok": true, "success-rate": 0.99, "items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}});
        let first = |t: &str| compile(t).unwrap().query(&doc).first().cloned();
        assert_eq!(first("{$.data.ok}"), Some(json!(true)));
        assert_eq!(first("{.data.success-rate}"), Some(json!(0.99)));
        assert_eq!(first("{.data.items[*].v}"), Some(json!(1)));
        assert_eq!(first("{.data.items[?(@.name==\"b\")].v}"), Some(json!(2)));
        assert_eq!(first("{$}"), Some(doc.clone()));
        assert_eq!(first("{.data.missing}"), None);
    }
}
