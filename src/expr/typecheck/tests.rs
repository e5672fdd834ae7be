//! The type check must flag what upstream rejects at compile time and nothing else.

use super::*;

const ALL: CheckEnv<'static> = CheckEnv {
    result: None,
    helpers: &ALL_HELPERS,
};

fn env(result: Ty) -> CheckEnv<'static> {
    CheckEnv {
        result: Some(result),
        ..ALL
    }
}

fn floats() -> Ty {
    Ty::Array(Box::new(Ty::Float))
}

#[test]
fn accepts_valid_expressions_without_false_errors() {
    let cases = [
        ("result[0] >= 0.95", floats(), Ty::Bool),
        ("len(result) == 0 || result[0] >= 0.95", floats(), Ty::Bool),
        ("isNaN(result) || result >= 0.95", Ty::Float, Ty::Bool),
        ("all(result, # < 1000)", floats(), Ty::Bool),
        ("all(result, {# > 1})", floats(), Ty::Bool),
        ("result == 'true'", Ty::String, Ty::Bool),
        (
            "result.ok && result.successPercent >= 0.90",
            Ty::Map,
            Ty::Bool,
        ),
        ("asInt(result) >= 2", Ty::String, Ty::Bool),
        ("default(result, 0) < 0.05", Ty::Unknown, Ty::Bool),
        ("result.a == 'x' && result.b == 1", Ty::Map, Ty::Bool),
        ("2 in result", floats(), Ty::Bool),
        ("result[0] not in [1, 2]", floats(), Ty::Bool),
        (
            "let x = result[0]; x > 1 and not (x > 5)",
            floats(),
            Ty::Bool,
        ),
        ("result | len() > 0", floats(), Ty::Bool),
        (
            "filter(result, .ok) | len() == 1",
            Ty::Array(Box::new(Ty::Unknown)),
            Ty::Bool,
        ),
        (
            "map(result, {#.x}) == [1]",
            Ty::Array(Box::new(Ty::Unknown)),
            Ty::Bool,
        ),
        ("result > 1 ? true : false", Ty::Float, Ty::Bool),
        ("if result > 1 { true } else { false }", Ty::Float, Ty::Bool),
        ("now() - duration('5m') < now()", Ty::Unknown, Ty::Bool),
        ("result == nil", Ty::Float, Ty::Bool),
        ("result['x'] ?? 0 > 1", Ty::Map, Ty::Unknown),
        ("-result[0] ** 2 < 1", floats(), Ty::Bool),
        ("1", Ty::Unknown, Ty::Int),
        ("asInt(result)", Ty::String, Ty::Int64),
        ("result[1:] == []", floats(), Ty::Bool),
        ("$env.result != nil", Ty::Float, Ty::Bool),
        ("count(result, # > 1) == 2 // comment", floats(), Ty::Bool),
        ("upper('a') startsWith 'A'", Ty::Unknown, Ty::Bool),
        ("result matches '^a'", Ty::String, Ty::Bool),
    ];
    for (source, result, expected) in cases {
        assert_eq!(check(source, &env(result)), Ok(expected), "{source}");
    }
}

#[test]
fn reports_upstream_compile_errors() {
    let cases = [
        (
            "asFloat(result) == \"1.1\"",
            Ty::String,
            "invalid operation: == (mismatched types float64 and string)",
        ),
        (
            "result[0] != 'x'",
            floats(),
            "invalid operation: != (mismatched types float64 and string)",
        ),
        (
            "result < 'a'",
            Ty::Int,
            "invalid operation: < (mismatched types int and string)",
        ),
        (
            "asInt(result) == true",
            Ty::String,
            "invalid operation: == (mismatched types int64 and bool)",
        ),
        ("a == true", Ty::Bool, "unknown name a"),
        ("true || invalidVar", Ty::Bool, "unknown name invalidVar"),
        ("len(result) > x", floats(), "unknown name x"),
        (
            "isNaN(result)",
            floats(),
            "cannot use []float64 as argument (type float64) to call isNaN",
        ),
    ];
    for (source, result, expected) in cases {
        assert_eq!(
            check(source, &env(result)),
            Err(expected.to_string()),
            "{source}"
        );
    }
}

#[test]
fn time_environment_has_no_result_and_fewer_helpers() {
    let time = CheckEnv {
        result: None,
        helpers: &["isNaN", "isInf"],
    };
    assert_eq!(check("now() - duration(\"5m\")", &time), Ok(Ty::Time));
    assert_eq!(check("hello", &time), Err("unknown name hello".to_string()));
    assert_eq!(
        check("result", &time),
        Err("unknown name result".to_string())
    );
    assert_eq!(
        check("asInt(1)", &time),
        Err("unknown name asInt".to_string())
    );
}

#[test]
fn unparsed_input_is_not_checked() {
    for source in ["now() -- ?", "'unterminated", "a ==", "a == (", "{", "@"] {
        assert_eq!(check(source, &env(Ty::Float)), Ok(Ty::Unknown), "{source}");
    }
}
