//! A conservative static type check of an expression, reproducing the compile-time errors of Go
//! expr-lang that the expr-lang crate (which only checks at run time) cannot produce.
//!
//! Why this exists: upstream compiles conditions against the concrete type of `result`, so
//! `asFloat(result) == "1.1"` is an error (`invalid operation: == (mismatched types float64 and
//! string)`) and `true || a` fails with `unknown name a` before anything runs. The crate
//! evaluates `==` between a float and a string to `false` and never reaches `a`, and its AST is
//! private, so this module re-reads the source with its own small Pratt parser that mirrors the
//! crate's precedence table, and infers types.
//!
//! It is deliberately conservative: whatever it does not understand is typed `Unknown`, and an
//! `Unknown` never produces an error; an expression it cannot parse is not checked at all (the
//! crate has already accepted it, and will report what goes wrong at run time).

use super::value::MetricValue;

/// A static type, named as Go names it in messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ty {
    Unknown,
    Nil,
    Bool,
    Int,
    Int64,
    Float,
    String,
    Array(Box<Ty>),
    Map,
    Time,
    Duration,
}

impl Ty {
    pub(crate) fn of(value: &MetricValue) -> Ty {
        match value {
            // A nil result has no useful static type upstream either (it is an empty interface).
            MetricValue::Nil => Ty::Unknown,
            MetricValue::Bool(_) => Ty::Bool,
            MetricValue::Int(_) => Ty::Int,
            MetricValue::Float(_) => Ty::Float,
            MetricValue::String(_) => Ty::String,
            MetricValue::FloatList(_) => Ty::Array(Box::new(Ty::Float)),
            MetricValue::List(_) => Ty::Array(Box::new(Ty::Unknown)),
            MetricValue::Map(_) => Ty::Map,
        }
    }

    /// The Go type name, or `None` when the type is not known statically.
    pub(crate) fn go_name(&self) -> Option<&'static str> {
        Some(match self {
            Ty::Unknown => return None,
            Ty::Nil => "<nil>",
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Int64 => "int64",
            Ty::Float => "float64",
            Ty::String => "string",
            Ty::Array(elem) => match elem.as_ref() {
                Ty::Float => "[]float64",
                Ty::Int => "[]int",
                Ty::String => "[]string",
                _ => "[]interface {}",
            },
            Ty::Map => "map[string]interface {}",
            Ty::Time => "time.Time",
            Ty::Duration => "time.Duration",
        })
    }

    fn is_number(&self) -> bool {
        matches!(self, Ty::Int | Ty::Int64 | Ty::Float)
    }

    fn is_integer(&self) -> bool {
        matches!(self, Ty::Int | Ty::Int64)
    }
}

/// What the expression may refer to.
pub(crate) struct CheckEnv<'a> {
    /// The type of `result`, or `None` when there is no `result` (time expressions).
    pub(crate) result: Option<Ty>,
    /// Argo helpers available in this environment (others are "unknown name").
    pub(crate) helpers: &'a [&'a str],
}

/// Every Argo helper name; those missing from `CheckEnv::helpers` are unknown names.
const ALL_HELPERS: [&str; 6] = ["asInt", "asFloat", "isNaN", "isInf", "isNil", "default"];

/// Builtins whose closure argument binds `#` (mirrors the crate's and Go's predicate list).
const PREDICATE_FUNCTIONS: [&str; 15] = [
    "all",
    "any",
    "one",
    "none",
    "map",
    "filter",
    "find",
    "findIndex",
    "findLast",
    "findLastIndex",
    "count",
    "sum",
    "reduce",
    "groupBy",
    "sortBy",
];

/// Checks `source`; `Ok` carries the inferred type (`Unknown` when not inferred or not parsed).
pub(crate) fn check(source: &str, env: &CheckEnv<'_>) -> Result<Ty, String> {
    let Some(tokens) = tokenize(source) else {
        return Ok(Ty::Unknown);
    };
    let mut parser = Parser {
        tokens,
        pos: 0,
        env,
        scopes: Vec::new(),
        closures: 0,
        error: None,
    };
    match parser.program(None) {
        // Errors count only when the whole expression was understood: a misread expression
        // must never produce an error the crate would not.
        Ok(ty) if parser.pos == parser.tokens.len() => match parser.error {
            Some(message) => Err(message),
            None => Ok(ty),
        },
        Ok(_) | Err(Unsupported) => Ok(Ty::Unknown),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Ty),
    Str,
    Other,
    Ident(String),
    Punct(&'static str),
}

/// Two-character punctuation first, so the longest match wins.
const PUNCTS: [&str; 32] = [
    "?.", "??", "..", "**", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}", ",",
    ":", ";", ".", "?", "+", "-", "*", "/", "%", "^", "<", ">", "!", "=", "|",
];

/// Splits the source into tokens; `None` for anything unexpected (the check is then skipped).
fn tokenize(source: &str) -> Option<Vec<Tok>> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && at(i + 1) == '/') {
                i += 1;
            }
            i += 2;
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_ascii_digit()) {
            let mut float = false;
            if c == '0' && matches!(at(i + 1), 'x' | 'X' | 'o' | 'O' | 'b' | 'B') {
                i += 2;
                while at(i).is_ascii_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            } else {
                while at(i).is_ascii_digit() || at(i) == '_' {
                    i += 1;
                }
                if at(i) == '.' && at(i + 1) != '.' {
                    float = true;
                    i += 1;
                    while at(i).is_ascii_digit() || at(i) == '_' {
                        i += 1;
                    }
                }
                if matches!(at(i), 'e' | 'E') {
                    float = true;
                    i += 1;
                    if matches!(at(i), '+' | '-') {
                        i += 1;
                    }
                    while at(i).is_ascii_digit() || at(i) == '_' {
                        i += 1;
                    }
                }
            }
            tokens.push(Tok::Num(if float { Ty::Float } else { Ty::Int }));
        } else if matches!(c, 'b' | 'B') && matches!(at(i + 1), '"' | '\'') {
            i = skip_quoted(&chars, i + 1)?;
            tokens.push(Tok::Other);
        } else if matches!(c, '"' | '\'') {
            i = skip_quoted(&chars, i)?;
            tokens.push(Tok::Str);
        } else if c == '`' {
            i += 1;
            while at(i) != '`' {
                if i >= chars.len() {
                    return None;
                }
                i += 1;
            }
            i += 1;
            tokens.push(Tok::Str);
        } else if c == '#' || c == '$' || c == '_' || c.is_ascii_alphabetic() {
            let start = i;
            i += 1;
            while at(i).is_ascii_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            tokens.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let punct = PUNCTS.iter().find(|p| rest.starts_with(**p))?;
            i += punct.chars().count();
            tokens.push(Tok::Punct(punct));
        }
    }
    Some(tokens)
}

/// Index just past the closing quote of the string starting at `start`.
fn skip_quoted(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    let mut i = start + 1;
    loop {
        match chars.get(i)? {
            '\\' => i += 2,
            c if *c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// A construct this parser does not model: the whole check is skipped.
struct Unsupported;

type Parse<T> = Result<T, Unsupported>;

struct Parser<'e, 'h> {
    tokens: Vec<Tok>,
    pos: usize,
    env: &'e CheckEnv<'h>,
    /// `let` bindings and closure parameters, innermost last.
    scopes: Vec<(String, Ty)>,
    /// How many closures enclose the current position.
    closures: usize,
    /// The first compile-time error upstream would report.
    error: Option<String>,
}

// Binding powers, mirroring the crate's Pratt table (lowest first).
const BP_TERNARY: u8 = 1;
const BP_PIPE: u8 = 2;
const BP_OR: u8 = 3;
const BP_AND: u8 = 4;
const BP_COMPARE: u8 = 5;
const BP_RANGE: u8 = 6;
const BP_ADD: u8 = 7;
const BP_NOT: u8 = 8;
const BP_MUL: u8 = 9;
const BP_SIGN: u8 = 10;
const BP_EXP: u8 = 11;
const BP_DEFAULT: u8 = 12;

impl Parser<'_, '_> {
    fn report(&mut self, message: String) {
        self.error.get_or_insert(message);
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + offset)
    }

    fn is_punct(&self, punct: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(p)) if *p == punct)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn expect_punct(&mut self, punct: &str) -> Parse<()> {
        if self.is_punct(punct) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    /// `(let name = expr;)* expr`, optionally ending at `close`.
    fn program(&mut self, close: Option<&str>) -> Parse<Ty> {
        let depth = self.scopes.len();
        while self.is_word("let") {
            self.pos += 1;
            let Some(Tok::Ident(name)) = self.peek().cloned() else {
                return Err(Unsupported);
            };
            self.pos += 1;
            self.expect_punct("=")?;
            let ty = self.expr(0)?;
            self.expect_punct(";")?;
            self.scopes.push((name, ty));
        }
        let ty = self.expr(0)?;
        if let Some(close) = close {
            self.expect_punct(close)?;
        }
        self.scopes.truncate(depth);
        Ok(ty)
    }

    fn expr(&mut self, min_bp: u8) -> Parse<Ty> {
        let mut left = self.prefix()?;
        while let Some(token) = self.peek().cloned() {
            let (bp, op): (u8, &str) = match &token {
                Tok::Punct(p) => match *p {
                    "?" => (BP_TERNARY, "?"),
                    "|" => (BP_PIPE, "|"),
                    "||" => (BP_OR, "||"),
                    "&&" => (BP_AND, "&&"),
                    "==" | "!=" | "<" | ">" | "<=" | ">=" => (BP_COMPARE, p),
                    ".." => (BP_RANGE, ".."),
                    "+" | "-" => (BP_ADD, p),
                    "*" | "/" | "%" => (BP_MUL, p),
                    "**" | "^" => (BP_EXP, "**"),
                    "??" => (BP_DEFAULT, "??"),
                    "." | "?." | "[" => (u8::MAX, p),
                    _ => break,
                },
                Tok::Ident(word) => match word.as_str() {
                    "or" => (BP_OR, "||"),
                    "and" => (BP_AND, "&&"),
                    "in" | "contains" | "startsWith" | "endsWith" | "matches" => (BP_COMPARE, "in"),
                    "not" if matches!(self.peek_at(1), Some(Tok::Ident(w)) if w == "in") => {
                        (BP_COMPARE, "not in")
                    }
                    _ => break,
                },
                _ => break,
            };
            if bp <= min_bp {
                break;
            }
            self.pos += if op == "not in" { 2 } else { 1 };
            left = match op {
                "?" => {
                    let yes = self.expr(0)?;
                    self.expect_punct(":")?;
                    let no = self.expr(0)?;
                    if yes == no { yes } else { Ty::Unknown }
                }
                "??" => {
                    self.expr(0)?;
                    Ty::Unknown
                }
                "|" => {
                    let Some(Tok::Ident(name)) = self.peek().cloned() else {
                        return Err(Unsupported);
                    };
                    self.pos += 1;
                    self.expect_punct("(")?;
                    self.call(&name, vec![left])?
                }
                "." | "?." => self.member()?,
                "[" => self.index(left)?,
                "**" => {
                    let right = self.expr(bp - 1)?;
                    arithmetic(op, &left, &right)
                }
                _ => {
                    let right = self.expr(bp)?;
                    binary(op, &left, &right).unwrap_or_else(|message| {
                        self.report(message);
                        Ty::Bool
                    })
                }
            };
        }
        Ok(left)
    }

    fn prefix(&mut self) -> Parse<Ty> {
        let Some(token) = self.peek().cloned() else {
            return Err(Unsupported);
        };
        self.pos += 1;
        match token {
            Tok::Num(ty) => Ok(ty),
            Tok::Str => Ok(Ty::String),
            Tok::Other => Ok(Ty::Unknown),
            Tok::Punct("!") => {
                self.expr(BP_NOT)?;
                Ok(Ty::Bool)
            }
            Tok::Punct("-") | Tok::Punct("+") => {
                let ty = self.expr(BP_SIGN)?;
                Ok(if ty.is_number() || ty == Ty::Duration {
                    ty
                } else {
                    Ty::Unknown
                })
            }
            Tok::Punct("(") => {
                let ty = self.expr(0)?;
                self.expect_punct(")")?;
                Ok(ty)
            }
            Tok::Punct("[") => {
                self.list("]")?;
                Ok(Ty::Array(Box::new(Ty::Unknown)))
            }
            Tok::Punct("{") => {
                self.map_literal()?;
                Ok(Ty::Map)
            }
            Tok::Ident(word) => match word.as_str() {
                "true" | "false" => Ok(Ty::Bool),
                "nil" => Ok(Ty::Nil),
                "not" => {
                    self.expr(BP_NOT)?;
                    Ok(Ty::Bool)
                }
                "if" => self.conditional(),
                "let" => Err(Unsupported),
                _ if self.is_punct("(") => {
                    self.pos += 1;
                    self.call(&word, Vec::new())
                }
                _ => self.identifier(&word),
            },
            // `.field` in a closure is a field of `#`.
            Tok::Punct(".") if self.closures > 0 => self.member(),
            Tok::Punct(_) => Err(Unsupported),
        }
    }

    /// `if cond { program } else { program }` or `else if ...`; the `if` is consumed.
    fn conditional(&mut self) -> Parse<Ty> {
        self.expr(0)?;
        self.expect_punct("{")?;
        let yes = self.program(Some("}"))?;
        if !self.is_word("else") {
            return Err(Unsupported);
        }
        self.pos += 1;
        let no = if self.is_word("if") {
            self.pos += 1;
            self.conditional()?
        } else {
            self.expect_punct("{")?;
            self.program(Some("}"))?
        };
        Ok(if yes == no { yes } else { Ty::Unknown })
    }

    fn identifier(&mut self, name: &str) -> Parse<Ty> {
        if let Some((_, ty)) = self.scopes.iter().rev().find(|(n, _)| n == name) {
            return Ok(ty.clone());
        }
        if name == "result"
            && let Some(ty) = &self.env.result
        {
            return Ok(ty.clone());
        }
        if name == "$env" {
            return Ok(Ty::Map);
        }
        if self.closures > 0 || name.starts_with('#') || self.env.helpers.contains(&name) {
            // Inside a closure a bare name may be a field of `#`; helpers are function values.
            return Ok(Ty::Unknown);
        }
        self.report(format!("unknown name {name}"));
        Ok(Ty::Unknown)
    }

    /// A call `name(args)`; the `(` is consumed. `args` holds a piped-in first argument.
    fn call(&mut self, name: &str, mut args: Vec<Ty>) -> Parse<Ty> {
        if ALL_HELPERS.contains(&name) && !self.env.helpers.contains(&name) {
            self.report(format!("unknown name {name}"));
        }
        let takes_predicate = PREDICATE_FUNCTIONS.contains(&name);
        let piped = args.len();
        while !self.is_punct(")") {
            if args.len() > piped {
                self.expect_punct(",")?;
            }
            let closure = takes_predicate && !args.is_empty();
            let elem = match args.first() {
                Some(Ty::Array(elem)) => elem.as_ref().clone(),
                _ => Ty::Unknown,
            };
            let ty = if closure {
                self.closure_arg(elem)?
            } else {
                self.expr(0)?
            };
            args.push(ty);
        }
        self.pos += 1;
        if let ("isNaN" | "isInf", [arg]) = (name, args.as_slice())
            && let Some(arg_name) = arg.go_name()
            && !arg.is_number()
        {
            self.report(format!(
                "cannot use {arg_name} as argument (type float64) to call {name}"
            ));
        }
        Ok(return_type(name, &args))
    }

    /// An argument that may be a closure: `{...}` (unless it reads as a map), `.field`, or an
    /// expression over `#`.
    fn closure_arg(&mut self, elem: Ty) -> Parse<Ty> {
        self.closures += 1;
        self.scopes.push(("#".to_string(), elem));
        self.scopes.push(("#index".to_string(), Ty::Int));
        let looks_like_map = self.is_punct("{")
            && (matches!(self.peek_at(1), Some(Tok::Punct("}")))
                || (matches!(self.peek_at(1), Some(Tok::Ident(_) | Tok::Str))
                    && matches!(self.peek_at(2), Some(Tok::Punct(":")))));
        let result = if self.is_punct("{") && !looks_like_map {
            self.pos += 1;
            self.program(Some("}"))
        } else if self.is_punct(".") {
            self.pos += 1;
            self.member()
        } else {
            self.expr(0)
        };
        self.scopes.truncate(self.scopes.len() - 2);
        self.closures -= 1;
        result.map(|_| Ty::Unknown)
    }

    /// `.name`, `.name(args)` or `?.[index]` after the `.`/`?.`: members of maps and the
    /// results of methods are not typed.
    fn member(&mut self) -> Parse<Ty> {
        match self.peek().cloned() {
            Some(Tok::Ident(_)) => self.pos += 1,
            Some(Tok::Punct("[")) => {
                self.pos += 1;
                return self.index(Ty::Unknown);
            }
            _ => return Err(Unsupported),
        }
        if self.is_punct("(") {
            self.pos += 1;
            self.list(")")?;
        }
        Ok(Ty::Unknown)
    }

    /// `[i]`, `[a:b]`, `[:b]`, `[a:]`; the `[` is consumed.
    fn index(&mut self, target: Ty) -> Parse<Ty> {
        let mut slice = false;
        if !self.is_punct(":") {
            self.expr(0)?;
        }
        if self.is_punct(":") {
            slice = true;
            self.pos += 1;
            if !self.is_punct("]") {
                self.expr(0)?;
            }
        }
        self.expect_punct("]")?;
        Ok(match (slice, target) {
            (true, ty @ (Ty::Array(_) | Ty::String)) => ty,
            (false, Ty::Array(elem)) => *elem,
            (false, Ty::String) => Ty::String,
            _ => Ty::Unknown,
        })
    }

    /// Comma-separated expressions up to `close` (consumed).
    fn list(&mut self, close: &str) -> Parse<()> {
        let mut first = true;
        while !self.is_punct(close) {
            if !first {
                self.expect_punct(",")?;
                if self.is_punct(close) {
                    break;
                }
            }
            first = false;
            self.expr(0)?;
        }
        self.pos += 1;
        Ok(())
    }

    /// `{key: expr, ...}`; the `{` is consumed.
    fn map_literal(&mut self) -> Parse<()> {
        let mut first = true;
        while !self.is_punct("}") {
            if !first {
                self.expect_punct(",")?;
                if self.is_punct("}") {
                    break;
                }
            }
            first = false;
            match self.peek() {
                Some(Tok::Ident(_) | Tok::Str) => self.pos += 1,
                _ => return Err(Unsupported),
            }
            self.expect_punct(":")?;
            self.expr(0)?;
        }
        self.pos += 1;
        Ok(())
    }
}

/// Types of the operators that can fail to type-check upstream; the rest are inferred.
fn binary(op: &str, left: &Ty, right: &Ty) -> Result<Ty, String> {
    let known = left.go_name().zip(right.go_name());
    match op {
        "==" | "!=" => {
            if let Some((l, r)) = known
                && !comparable(left, right)
            {
                return Err(mismatch(op, l, r));
            }
            Ok(Ty::Bool)
        }
        "<" | ">" | "<=" | ">=" => {
            let ordered = (left.is_number() && right.is_number())
                || (left == right && matches!(left, Ty::String | Ty::Time | Ty::Duration));
            if let Some((l, r)) = known
                && !ordered
                && *left != Ty::Nil
                && *right != Ty::Nil
            {
                return Err(mismatch(op, l, r));
            }
            Ok(Ty::Bool)
        }
        "||" | "&&" | "in" | "not in" => Ok(Ty::Bool),
        ".." => Ok(Ty::Array(Box::new(Ty::Int))),
        _ => Ok(arithmetic(op, left, right)),
    }
}

fn mismatch(op: &str, left: &str, right: &str) -> String {
    format!("invalid operation: {op} (mismatched types {left} and {right})")
}

/// Upstream's `isComparable` for two statically known types.
fn comparable(left: &Ty, right: &Ty) -> bool {
    matches!(left, Ty::Nil)
        || matches!(right, Ty::Nil)
        || (left.is_number() && right.is_number())
        || matches!((left, right), (Ty::Array(_), Ty::Array(_)))
        || left == right
}

fn arithmetic(op: &str, left: &Ty, right: &Ty) -> Ty {
    let numbers = left.is_number() && right.is_number();
    let integers = left.is_integer() && right.is_integer();
    match (op, left, right) {
        ("+" | "-" | "*", _, _) if integers => Ty::Int,
        ("+" | "-" | "*" | "/" | "**", _, _) if numbers => Ty::Float,
        ("%", _, _) if integers => Ty::Int,
        ("+", Ty::String, Ty::String) => Ty::String,
        ("+" | "-", Ty::Time, Ty::Duration) | ("+", Ty::Duration, Ty::Time) => Ty::Time,
        ("-", Ty::Time, Ty::Time) | ("+" | "-", Ty::Duration, Ty::Duration) => Ty::Duration,
        ("*", Ty::Duration, r) if r.is_integer() => Ty::Duration,
        ("*", l, Ty::Duration) if l.is_integer() => Ty::Duration,
        _ => Ty::Unknown,
    }
}

/// Return types of the helpers and of the builtins whose result type is fixed.
fn return_type(name: &str, args: &[Ty]) -> Ty {
    match name {
        "asInt" => Ty::Int64,
        "asFloat" | "float" | "ceil" | "floor" | "round" | "mean" | "median" => Ty::Float,
        "isNaN" | "isInf" | "isNil" | "all" | "any" | "none" | "one" | "hasPrefix"
        | "hasSuffix" => Ty::Bool,
        "len" | "count" | "int" | "findIndex" | "findLastIndex" | "indexOf" | "lastIndexOf" => {
            Ty::Int
        }
        "string" | "upper" | "lower" | "trim" | "trimPrefix" | "trimSuffix" | "replace"
        | "repeat" | "join" | "toJSON" | "toBase64" | "fromBase64" | "type" => Ty::String,
        "split" | "splitAfter" => Ty::Array(Box::new(Ty::String)),
        "now" | "date" => Ty::Time,
        "duration" => Ty::Duration,
        "abs" => match args.first() {
            Some(ty) if ty.is_number() => ty.clone(),
            _ => Ty::Unknown,
        },
        _ => Ty::Unknown,
    }
}

#[cfg(test)]
mod tests;
