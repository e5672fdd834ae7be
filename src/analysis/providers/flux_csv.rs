//! Flux's annotated CSV (the body of InfluxDB's `POST /api/v2/query`): tables with
//! `#datatype` / `#group` / `#default` annotations, a header row and records, or an error table
//! (`error,reference`). Yields the typed `_value` of every record, in order.

use crate::expr::MetricValue;

/// One cell value as its `#datatype` says, Go-typed as the InfluxDB client returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum FluxValue {
    /// `double`.
    Double(f64),
    /// `long`.
    Long(i64),
    /// `unsignedLong`.
    UnsignedLong(u64),
    /// `boolean`.
    Boolean(bool),
    /// `string`, `duration`, `base64Binary` and unknown types: the text.
    Text(String),
    /// `dateTime:RFC3339` / `dateTime:RFC3339Nano`.
    Time(k8s_openapi::jiff::Timestamp),
    /// An empty cell without a default.
    Null,
}

impl FluxValue {
    /// The condition `result` element.
    pub fn to_metric(&self) -> MetricValue {
        match self {
            FluxValue::Double(f) => MetricValue::Float(*f),
            FluxValue::Long(i) => MetricValue::Int(*i),
            FluxValue::UnsignedLong(u) => {
                i64::try_from(*u).map_or(MetricValue::Float(*u as f64), MetricValue::Int)
            }
            FluxValue::Boolean(b) => MetricValue::Bool(*b),
            FluxValue::Text(s) => MetricValue::String(s.clone()),
            FluxValue::Time(t) => MetricValue::String(t.to_string()),
            FluxValue::Null => MetricValue::Nil,
        }
    }

    /// Go's `%v` of the value (`fmt.Sprint` of the client's Go types).
    pub fn go_text(&self) -> String {
        match self {
            FluxValue::Double(f) => crate::expr::format_go_float(*f),
            FluxValue::Long(i) => i.to_string(),
            FluxValue::UnsignedLong(u) => u.to_string(),
            FluxValue::Boolean(b) => b.to_string(),
            FluxValue::Text(s) => s.clone(),
            FluxValue::Time(t) => {
                let z = t.to_zoned(k8s_openapi::jiff::tz::TimeZone::UTC);
                let nanos = z.subsec_nanosecond();
                let frac = if nanos == 0 {
                    String::new()
                } else {
                    format!(".{nanos:09}").trim_end_matches('0').to_string()
                };
                format!("{}{frac} +0000 UTC", z.strftime("%Y-%m-%d %H:%M:%S"))
            }
            FluxValue::Null => "<nil>".into(),
        }
    }
}

/// Splits CSV text into rows of fields (RFC 4180: quoted fields with `""` escapes and line
/// breaks inside quotes). A blank line is an empty row (Flux separates tables with one).
pub fn rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut at_row_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                at_row_start = false;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                at_row_start = false;
            }
            '\r' => {}
            '\n' => {
                if at_row_start {
                    rows.push(Vec::new());
                } else {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                at_row_start = true;
            }
            c => {
                field.push(c);
                at_row_start = false;
            }
        }
    }
    if !at_row_start {
        row.push(field);
        rows.push(row);
    }
    rows
}

fn typed(datatype: &str, text: &str) -> Result<FluxValue, String> {
    let bad = |what: &str| format!("{what} value error: {text:?}");
    Ok(match datatype {
        "double" => match text {
            "+Inf" | "Inf" => FluxValue::Double(f64::INFINITY),
            "-Inf" => FluxValue::Double(f64::NEG_INFINITY),
            _ => FluxValue::Double(text.parse().map_err(|_| bad("double"))?),
        },
        "long" => FluxValue::Long(text.parse().map_err(|_| bad("long"))?),
        "unsignedLong" => FluxValue::UnsignedLong(text.parse().map_err(|_| bad("unsignedLong"))?),
        "boolean" => FluxValue::Boolean(text == "true"),
        "dateTime:RFC3339" | "dateTime:RFC3339Nano" => {
            FluxValue::Time(text.parse().map_err(|_| bad("dateTime"))?)
        }
        _ => FluxValue::Text(text.to_string()),
    })
}

/// The `_value` of every record, or the error an error table carries (`message,reference`).
pub fn values(text: &str) -> Result<Vec<FluxValue>, String> {
    let mut out = Vec::new();
    let mut datatypes: Vec<String> = Vec::new();
    let mut defaults: Vec<String> = Vec::new();
    let mut header: Option<Vec<String>> = None;
    for row in rows(text) {
        if row.is_empty() || row.iter().all(String::is_empty) {
            // A new table follows: its annotations and header come again.
            header = None;
            datatypes.clear();
            defaults.clear();
            continue;
        }
        match row[0].as_str() {
            "#datatype" => {
                datatypes = row;
                header = None;
                continue;
            }
            "#default" => {
                defaults = row;
                continue;
            }
            s if s.starts_with('#') => continue,
            _ => {}
        }
        let Some(columns) = &header else {
            header = Some(row);
            continue;
        };
        if columns.get(1).map(String::as_str) == Some("error") {
            let message = row.get(1).cloned().unwrap_or_default();
            let reference = row.get(2).cloned().unwrap_or_default();
            return Err(if reference.is_empty() {
                message
            } else {
                format!("{message},{reference}")
            });
        }
        let Some(index) = columns.iter().position(|c| c == "_value") else {
            continue;
        };
        let mut cell = row.get(index).cloned().unwrap_or_default();
        if cell.is_empty() {
            cell = defaults.get(index).cloned().unwrap_or_default();
        }
        if cell.is_empty() {
            out.push(FluxValue::Null);
            continue;
        }
        let datatype = datatypes.get(index).map(String::as_str).unwrap_or("string");
        out.push(typed(datatype, &cell)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_TABLES: &str = "#datatype,string,long,dateTime:RFC3339,double,string\n#group,false,false,false,false,true\n#default,_result,,,,\n,result,table,_time,_value,_field\n,,0,2026-01-01T00:00:00Z,1.5,cpu\n,,0,2026-01-01T00:01:00Z,2,cpu\n\n#datatype,string,long,dateTime:RFC3339,long,string\n#group,false,false,false,false,true\n#default,_result,,,,\n,result,table,_time,_value,_field\n,,1,2026-01-01T00:00:00Z,7,\"a,b\"\n\n";

    #[test]
    fn typed_values_across_tables() {
        let v = values(TWO_TABLES).unwrap();
        assert_eq!(
            v,
            vec![
                FluxValue::Double(1.5),
                FluxValue::Double(2.0),
                FluxValue::Long(7)
            ]
        );
        let text: Vec<String> = v.iter().map(FluxValue::go_text).collect();
        assert_eq!(text, ["1.5", "2", "7"]);
    }

    #[test]
    fn error_table() {
        let body = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,failed to parse query,897\n";
        assert_eq!(values(body).unwrap_err(), "failed to parse query,897");
    }

    #[test]
    fn quoted_fields() {
        assert_eq!(
            rows("a,\"b,\"\"c\"\"\"\n"),
            vec![vec!["a".to_string(), "b,\"c\"".to_string()]]
        );
    }
}
