//! Go-compatible renderings of numbers and values: Prometheus sample values and Go's `%v`.

use expr::Value;

/// A Prometheus sample value as Prometheus' Go client prints it (`SampleValue.String()`, i.e.
/// `strconv.FormatFloat(v, 'f', -1, 64)`): shortest round-trip digits, never an exponent,
/// `NaN`, `+Inf`, `-Inf`. This is the measurement value Argo stores for a scalar.
pub fn format_sample_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        // Rust's `Display` for f64 is exactly Go's 'f' with precision -1: shortest digits that
        // round-trip, positional notation, `-0` for negative zero.
        value.to_string()
    }
}

/// A list of sample values as Argo's Prometheus provider stores it: `[v1,v2,...]`, `[]` when
/// empty, each value formatted by [`format_sample_value`].
pub fn format_sample_list(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format_sample_value(*v)).collect();
    format!("[{}]", parts.join(","))
}

/// Go's `%v` of a float64: shortest digits, exponent form when the decimal exponent is below
/// -4 or at least 21 (`1e+21`, `1e-05`).
pub fn format_go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip mantissa with its exponent, e.g. `1.5e-7`.
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return value.to_string();
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return value.to_string();
    };
    if (-4..21).contains(&exponent) {
        value.to_string()
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Go's `%v` of an expr value, for messages such as `asInt() not supported on bool true`.
pub(crate) fn format_go_value(value: &Value) -> String {
    match value {
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => format_go_float(*f),
        Value::Bool(b) => b.to_string(),
        Value::Nil => "<nil>".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(format_go_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(key, value)| format!("{key}:{}", format_go_value(value)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_values_like_prometheus() {
        let cases = [
            (10.0, "10"),
            (0.5, "0.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (-3.25, "-3.25"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_sample_value(value), expected, "{value:?}");
        }
    }

    #[test]
    fn sample_lists() {
        assert_eq!(format_sample_list(&[10.0, 11.0]), "[10,11]");
        assert_eq!(format_sample_list(&[]), "[]");
        assert_eq!(format_sample_list(&[0.99, f64::NAN]), "[0.99,NaN]");
    }

    #[test]
    fn go_percent_v_floats() {
        let cases = [
            (1.0, "1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-07"),
            (-2.5e300, "-2.5e+300"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (value, expected) in cases {
            assert_eq!(format_go_float(value), expected, "{value:?}");
        }
    }

    #[test]
    fn go_percent_v_values() {
        let list = Value::Array(vec![Value::Float(1.0), Value::String("a".into())]);
        assert_eq!(format_go_value(&list), "[1 a]");
        assert_eq!(format_go_value(&Value::Nil), "<nil>");
    }
}
