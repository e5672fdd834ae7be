//! Argo Rollouts' helper functions (`asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`, `default`),
//! a clock-free `now()`, and the expr-lang environment and bindings they run in.

use std::sync::LazyLock;

use expr::{Context, ContextProvider, Environment, Value, bail};

use super::render::format_go_value;
use super::value::expr_value_type_name;
use crate::api::go_quote::go_quote;

/// Binding names the helpers read. They are not valid identifiers, so an expression can
/// neither name nor shadow them (`let result = ...` must not change what `isNil` sees, as
/// upstream's `isNil` captures the original result).
const HIDDEN_RESULT: &str = "@result";
const HIDDEN_NOW: &str = "@now";

/// The one environment every evaluation uses: expr-lang's builtins plus Argo's helpers. Built
/// once because registering ~100 builtins per evaluation would dominate the cost.
pub(crate) static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(build_environment);

fn build_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_function("asInt", |call| as_int(one_arg("asInt", call.args)?));
    env.add_function("asFloat", |call| as_float(one_arg("asFloat", call.args)?));
    env.add_function("isNaN", |call| {
        float_arg("isNaN", one_arg("isNaN", call.args)?).map(|f| Value::Bool(f.is_nan()))
    });
    env.add_function("isInf", |call| {
        float_arg("isInf", one_arg("isInf", call.args)?).map(|f| Value::Bool(f.is_infinite()))
    });
    // Upstream's isNil and default close over the metric result and ignore their first
    // argument: `isNil(anything)` asks whether the RESULT is nil.
    env.add_function("isNil", |call| {
        one_arg("isNil", call.args)?;
        match call.ctx.get(HIDDEN_RESULT) {
            Some(result) => Ok(Value::Bool(result.is_nil())),
            None => bail!("unknown name isNil"),
        }
    });
    env.add_function("default", |call| {
        let [_, fallback] = two_args("default", call.args)?;
        match call.ctx.get(HIDDEN_RESULT) {
            Some(Value::Nil) => Ok(fallback),
            Some(result) => Ok(result.clone()),
            None => bail!("unknown name default"),
        }
    });
    // The builtin `now()` reads the system clock; here the instant is a parameter of the
    // evaluation, so the decision stays a pure function of its inputs.
    env.add_function("now", |call| {
        if !call.args.is_empty() {
            bail!("too many arguments to call now");
        }
        match call.ctx.get(HIDDEN_NOW) {
            Some(now) => Ok(now.clone()),
            None => bail!("now() is not available: no evaluation time was given"),
        }
    });
    env
}

/// What an expression can see: `result` (conditions only) and the hidden values the helpers
/// read. Borrowed by expr-lang for one run; nothing is copied per lookup.
pub(crate) struct Bindings {
    result: Option<Value>,
    now: Option<Value>,
}

impl Bindings {
    pub(crate) fn new(result: Option<Value>, now: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        let now = now.map(|now| Value::DateTime(expr::DateTimeValue::fixed(now.fixed_offset())));
        Bindings { result, now }
    }
}

impl ContextProvider for Bindings {
    fn get(&self, key: &str) -> Option<&Value> {
        match key {
            "result" | HIDDEN_RESULT => self.result.as_ref(),
            HIDDEN_NOW => self.now.as_ref(),
            _ => None,
        }
    }

    fn to_context(&self) -> Context {
        let mut context = Context::default();
        if let Some(result) = &self.result {
            context.insert("result", result.clone());
        }
        context
    }
}

fn one_arg(name: &str, args: Vec<Value>) -> expr::Result<Value> {
    let [arg] = exact_args::<1>(name, args)?;
    Ok(arg)
}

fn two_args(name: &str, args: Vec<Value>) -> expr::Result<[Value; 2]> {
    exact_args::<2>(name, args)
}

/// Go expr's arity messages for a fixed-signature function.
fn exact_args<const N: usize>(name: &str, args: Vec<Value>) -> expr::Result<[Value; N]> {
    if args.len() < N {
        bail!("not enough arguments to call {name}");
    }
    if args.len() > N {
        bail!("too many arguments to call {name}");
    }
    match <[Value; N]>::try_from(args) {
        Ok(array) => Ok(array),
        Err(_) => bail!("not enough arguments to call {name}"),
    }
}

/// `isNaN`/`isInf` take a float64; Go converts an integer literal, anything else is rejected.
fn float_arg(name: &str, value: Value) -> expr::Result<f64> {
    match value {
        Value::Float(f) => Ok(f),
        Value::Integer(n) => Ok(n as f64),
        other => bail!(
            "cannot use {} as argument (type float64) to call {name}",
            expr_value_type_name(&other)
        ),
    }
}

/// Upstream `asInt`: floats are truncated toward zero, strings are parsed as base-10 integers
/// (`"1.1"` is an error), anything else is an error.
fn as_int(value: Value) -> expr::Result<Value> {
    match value {
        Value::Integer(n) => Ok(Value::Integer(n)),
        Value::Float(f) => Ok(Value::Integer(go_float_to_int(f))),
        Value::String(s) => match s.parse::<i64>() {
            // Rust accepts the same base-10 syntax as strconv.ParseInt(s, 10, 64): an optional
            // sign followed by digits.
            Ok(n) => Ok(Value::Integer(n)),
            Err(error) => {
                let reason = match error.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        "value out of range"
                    }
                    _ => "invalid syntax",
                };
                bail!("strconv.ParseInt: parsing {}: {reason}", go_quote(&s))
            }
        },
        other => bail!(
            "asInt() not supported on {} {}",
            expr_value_type_name(&other),
            format_go_value(&other)
        ),
    }
}

/// Go's `int64(f)` as amd64 computes it: truncation toward zero, and the "integer indefinite"
/// value `math.MinInt64` for NaN and out-of-range inputs (Rust's `as` would saturate).
fn go_float_to_int(f: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if f.is_nan() || !(-LIMIT..LIMIT).contains(&f) {
        i64::MIN
    } else {
        f as i64
    }
}

/// Upstream `asFloat`: numbers convert, strings are parsed with `strconv.ParseFloat`.
fn as_float(value: Value) -> expr::Result<Value> {
    match value {
        Value::Float(f) => Ok(Value::Float(f)),
        Value::Integer(n) => Ok(Value::Float(n as f64)),
        Value::String(s) => match parse_go_float_message(&s) {
            Ok(f) => Ok(Value::Float(f)),
            Err(message) => bail!("{message}"),
        },
        other => bail!(
            "asFloat() not supported on {} {}",
            expr_value_type_name(&other),
            format_go_value(&other)
        ),
    }
}

/// `strconv.ParseFloat(text, 64)`, as Prometheus sample values and `asFloat` use it:
/// decimal and exponent forms, `NaN`, `Inf`/`+Inf`/`-Inf`/`infinity` in any case.
pub fn parse_go_float(text: &str) -> Option<f64> {
    parse_go_float_message(text).ok()
}

fn parse_go_float_message(text: &str) -> Result<f64, String> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let signed_nan = unsigned.len() != text.len() && unsigned.eq_ignore_ascii_case("nan");
    match text.parse::<f64>() {
        // Go has no signed NaN spelling.
        Ok(_) if signed_nan => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(text)
        )),
        // Go reports overflow ("1e400") as an error where Rust rounds to infinity.
        Ok(f) if f.is_infinite() && !unsigned.starts_with(['i', 'I']) => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(text)
        )),
        Ok(f) => Ok(f),
        Err(_) => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(text)
        )),
    }
}

/// Upstream `evaluate.Equal` on string lists: same length and every element of `b` occurs in
/// `a` (a multiset check it is not: `[a, a]` equals `[a, b]` read one way round).
pub fn string_set_equal<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    a.len() == b.len()
        && b.iter()
            .all(|wanted| a.iter().any(|have| have.as_ref() == wanted.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_int_table() {
        let ok = [
            (Value::String("1".into()), 1),
            (Value::String("-42".into()), -42),
            (Value::String("+7".into()), 7),
            (Value::Integer(3), 3),
            (Value::Float(1.123), 1),
            (Value::Float(-1.9), -1),
            (Value::Float(f64::NAN), i64::MIN),
        ];
        for (input, expected) in ok {
            assert_eq!(
                as_int(input.clone()).ok(),
                Some(Value::Integer(expected)),
                "{input:?}"
            );
        }
        let errors = [
            (
                Value::String("1.1".into()),
                r#"strconv.ParseInt: parsing "1.1": invalid syntax"#,
            ),
            (
                Value::String("notint".into()),
                r#"strconv.ParseInt: parsing "notint": invalid syntax"#,
            ),
            (
                Value::String("99999999999999999999".into()),
                r#"strconv.ParseInt: parsing "99999999999999999999": value out of range"#,
            ),
            (Value::Bool(true), "asInt() not supported on bool true"),
        ];
        for (input, expected) in errors {
            let error = as_int(input).err().map(|e| e.to_string());
            assert_eq!(error.as_deref(), Some(expected));
        }
    }

    #[test]
    fn as_float_table() {
        assert_eq!(
            as_float(Value::String("1.1".into())).ok(),
            Some(Value::Float(1.1))
        );
        assert_eq!(as_float(Value::Integer(1)).ok(), Some(Value::Float(1.0)));
        let error = as_float(Value::String("NotANum".into()))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(r#"strconv.ParseFloat: parsing "NotANum": invalid syntax"#)
        );
    }

    #[test]
    fn parse_go_float_table() {
        assert_eq!(parse_go_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_go_float("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_go_float("infinity"), Some(f64::INFINITY));
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert_eq!(parse_go_float(".5"), Some(0.5));
        assert_eq!(parse_go_float("+nan"), None);
        assert_eq!(parse_go_float("1e400"), None);
        assert_eq!(parse_go_float(""), None);
        assert_eq!(parse_go_float("1_000"), None);
    }

    #[test]
    fn string_set_equal_table() {
        assert!(string_set_equal(&["a", "b"], &["b", "a"]));
        assert!(!string_set_equal(&["a"], &["a", "b"]));
        assert!(!string_set_equal::<&str, &str>(&["a", "b"], &[]));
        assert!(string_set_equal(&["a", "b"], &["a", "a"]));
    }

    #[test]
    fn arity_messages() {
        let error = exact_args::<2>("default", vec![Value::Nil])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("not enough arguments to call default")
        );
        let error = exact_args::<1>("isNil", vec![Value::Nil, Value::Nil])
            .err()
            .map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("too many arguments to call isNil"));
    }
}
