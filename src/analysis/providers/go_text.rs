//! Go standard-library text forms that upstream's providers put on the wire or in measurement
//! values: `net/url` query parsing and encoding (sorted keys, `QueryEscape`) and
//! `strconv.FormatFloat(v, 'f', -1, 64)`.

use std::collections::BTreeMap;

/// Query parameters as Go's `url.Values`: key → values, keys sorted when encoded.
pub type Values = BTreeMap<String, Vec<String>>;

/// Go's `url.QueryEscape`: letters, digits and `-_.~` stay, a space becomes `+`, every other
/// byte is `%XX` (upper-case hex).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` for a malformed escape.
pub fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.Values.Encode`: `k=v` pairs joined by `&`, keys sorted, values in order.
pub fn encode(values: &Values) -> String {
    let mut parts = Vec::new();
    for (key, list) in values {
        for value in list {
            parts.push(format!("{}={}", query_escape(key), query_escape(value)));
        }
    }
    parts.join("&")
}

/// Go's `url.ParseQuery` as `URL.Query()` uses it: pairs split on `&`, a pair holding `;` or a
/// malformed escape is dropped, a pair without `=` has an empty value.
pub fn parse_query(s: &str) -> Values {
    let mut values = Values::new();
    for pair in s.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(key), Some(value)) = (query_unescape(key), query_unescape(value)) else {
            continue;
        };
        values.entry(key).or_default().push(value);
    }
    values
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that read back as `v`,
/// never in exponent form (`0.0000001`, `1000000000000000000000`).
pub fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's `Display` of f64 is the shortest round-trip text without an exponent.
        v.to_string()
    }
}

/// Go's `fmt.Sprintf("%f", v)`: six decimals.
pub fn format_float_6(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v:.6}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        assert_eq!(query_escape("a b*c~d/e"), "a+b%2Ac~d%2Fe");
        assert_eq!(query_unescape("a+b%2A").as_deref(), Some("a b*"));
        assert_eq!(query_unescape("%zz"), None);
    }

    #[test]
    fn parses_and_encodes_sorted() {
        let mut v = parse_query("target=sum(a.*)&from=-5min&bad=%z&x;y=1");
        v.insert("format".into(), vec!["json".into()]);
        assert_eq!(encode(&v), "format=json&from=-5min&target=sum%28a.%2A%29");
    }

    #[test]
    fn floats() {
        assert_eq!(format_float_f(0.0000001), "0.0000001");
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(2.5), "2.5");
        assert_eq!(format_float_f(3.0), "3");
        assert_eq!(format_float_6(1.5), "1.500000");
    }
}
