//! Go's `%q` quoting, which upstream's messages embed (`could not evaluate successCondition
//! "..."`, `Invalid value: "..."`, argument errors): one implementation for every layer, so a
//! message reads the same wherever it is built.

/// Go's `%q` (`strconv.Quote`) of a string: double quotes, backslashes and control
/// characters escaped as Go escapes them, printable Unicode kept as is.
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a == true"), r#""a == true""#);
        assert_eq!(go_quote(r#"result == "ok""#), r#""result == \"ok\"""#);
        assert_eq!(go_quote("a\nb\t\\"), r#""a\nb\t\\""#);
        assert_eq!(go_quote("\u{0}"), r#""\x00""#);
        assert_eq!(go_quote("é"), "\"é\"");
    }
}
