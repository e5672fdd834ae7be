//! The condition language: Argo Rollouts' `successCondition`/`failureCondition` and Prometheus
//! `rangeQuery` time expressions, evaluated with the expr-lang crate plus Argo's helpers.
//!
//! Pure: no I/O and no clock. `now()` inside an expression is the `now` the caller passes; the
//! functions without a `now` parameter report an error if the expression calls `now()`.
//!
//! Known differences from upstream (Go expr-lang), all in the crate's run-time behaviour:
//! * indexing past the end of a list gives `nil` instead of an "index out of range" error, so
//!   `result[1] == 0.5` on a one-element list is `false` rather than an error (comparisons with
//!   `<`, `>=`, ... still error);
//! * `==` between an untyped value (a field of a decoded JSON map) and a value of another type
//!   is `false` in both, but between statically typed values only our type check (see
//!   `typecheck`) turns it into upstream's error, and it types fewer builtins than Go does;
//! * syntax error texts differ (positions are kept, the wording is pest's).

mod error;
mod helpers;
mod render;
mod time;
mod typecheck;
mod value;
mod verdict;

use chrono::{DateTime, Utc};

pub use error::ExprError;
pub use helpers::{parse_go_float, string_set_equal};
pub use render::{format_go_float, format_sample_list, format_sample_value};
pub use time::eval_time;
pub use value::MetricValue;
pub use verdict::{Verdict, evaluate_result, evaluate_result_at};

use helpers::{Bindings, ENVIRONMENT};
use typecheck::{CheckEnv, Ty};

/// Every Argo helper is available in conditions.
const CONDITION_HELPERS: [&str; 6] = ["asInt", "asFloat", "isNaN", "isInf", "isNil", "default"];

/// A parsed condition, reusable across measurements (parsing dominates the cost of a small
/// condition).
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
    program: expr::Program,
}

impl Condition {
    /// Parses `source`; a syntax error is reported here, type errors when evaluating (they
    /// depend on the type of the result, as upstream compiles against the result's type).
    pub fn compile(source: &str) -> Result<Condition, ExprError> {
        let program = expr::compile(source)?;
        Ok(Condition {
            source: source.to_string(),
            program,
        })
    }

    /// The condition's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Upstream `EvalCondition`: the boolean the condition gives for `result`. `now` is what
    /// `now()` returns; `None` makes `now()` an error.
    pub fn eval(
        &self,
        result: &MetricValue,
        now: Option<DateTime<Utc>>,
    ) -> Result<bool, ExprError> {
        let env = CheckEnv {
            result: Some(Ty::of(result)),
            helpers: &CONDITION_HELPERS,
        };
        let static_type = typecheck::check(&self.source, &env).map_err(ExprError::Check)?;
        let bindings = Bindings::new(Some(result.to_expr_value()), now);
        match ENVIRONMENT.run(&self.program, &bindings)? {
            expr::Value::Bool(value) => Ok(value),
            other => Err(ExprError::NotBool(
                static_type
                    .go_name()
                    .unwrap_or_else(|| value::expr_value_type_name(&other)),
            )),
        }
    }
}

/// Upstream `EvalCondition(result, condition)`; `now()` is unavailable (use
/// [`eval_condition_at`] where the evaluation time is known).
pub fn eval_condition(result: &MetricValue, condition: &str) -> Result<bool, ExprError> {
    Condition::compile(condition)?.eval(result, None)
}

/// [`eval_condition`] with `now()` bound to `now`.
pub fn eval_condition_at(
    result: &MetricValue,
    condition: &str,
    now: DateTime<Utc>,
) -> Result<bool, ExprError> {
    Condition::compile(condition)?.eval(result, Some(now))
}

#[cfg(test)]
mod tests;
