//! `eval_time`: Prometheus `rangeQuery.start`/`end` expressions such as `now() - duration("5m")`.

use chrono::{DateTime, Utc};

use super::error::ExprError;
use super::helpers::{Bindings, ENVIRONMENT};
use super::typecheck::{self, CheckEnv};
use super::value::expr_value_type_name;

/// Upstream's time environment binds only `isNaN` and `isInf` (plus expr builtins); there is no
/// `result`.
const TIME_HELPERS: [&str; 2] = ["isNaN", "isInf"];

/// Upstream `EvalTime(expression)`: the instant the expression gives, with `now()` = `now`.
/// Upstream returns the zero time alongside an error; here the error alone.
pub fn eval_time(expression: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ExprError> {
    let program = expr::compile(expression)?;
    let env = CheckEnv {
        result: None,
        helpers: &TIME_HELPERS,
    };
    let static_type = typecheck::check(expression, &env).map_err(ExprError::Check)?;
    let bindings = Bindings::new(None, Some(now));
    match ENVIRONMENT.run(&program, &bindings)? {
        expr::Value::DateTime(instant) => Ok(instant.with_timezone(&Utc)),
        other => Err(ExprError::NotTime(
            static_type
                .go_name()
                .unwrap_or_else(|| expr_value_type_name(&other)),
        )),
    }
}
