//! Promotion windows (Davy's own `davy.dev/promotion-windows` Rollout annotation, in the style of
//! Argo CD sync windows): the annotation's format, and when promotion is allowed. Pure: `now` is
//! always a parameter. Format and semantics for users: `docs/promotion-windows.md`.
//!
//! Schedules are standard 5-field cron (minute hour day-of-month month day-of-week, as Argo CD
//! and Vixie cron read them) or 6 fields with seconds first. The `cron` crate wants seconds and
//! numbers weekdays 1-7 from Sunday, so the day-of-week field is expanded here into names; and
//! where cron ORs a restricted day-of-month with a restricted day-of-week, the crate ANDs them,
//! so such a schedule becomes two crate schedules. Times are UTC (no time-zone database is a
//! dependency yet).

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Duration, SecondsFormat, SubsecRound, Utc};
use cron::Schedule;
use serde_json::{Map, Value};

use crate::api::Rollout;
use crate::api::consts::davy_annotation::PROMOTION_WINDOWS;
use crate::api::parse_go_duration;

/// What a window does while it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Promotion is allowed while it is active (when any allow window exists, only then).
    Allow,
    /// Promotion is blocked while it is active, whatever the allow windows say.
    Deny,
}

/// One window: each time the schedule fires, it is active for `duration`.
#[derive(Debug, Clone)]
pub struct Window {
    /// Allow or deny.
    pub kind: WindowKind,
    /// The schedule as written.
    pub schedule: String,
    /// How long each occurrence lasts (> 0).
    pub duration: Duration,
    /// The crate schedules whose union is `schedule` (two when both day fields are restricted).
    schedules: Vec<Schedule>,
}

/// The parsed annotation: the windows in the order written.
#[derive(Debug, Clone, Default)]
pub struct PromotionWindows {
    /// The windows.
    pub windows: Vec<Window>,
}

/// Why the annotation is invalid, worded like a Kubernetes field error so it reads naturally in
/// the `InvalidSpec` condition (`The Rollout "x" is invalid: <this>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A value that cannot be used.
    #[error("{field}: Invalid value: {value:?}: {detail}")]
    Invalid {
        /// Path of the offending value.
        field: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A field that must be present is missing or empty.
    #[error("{field}: Required value")]
    Required {
        /// Path of the missing field.
        field: String,
    },
    /// A value outside a fixed set.
    #[error("{field}: Unsupported value: {value:?}: supported values: {supported}")]
    Unsupported {
        /// Path of the offending value.
        field: String,
        /// The value as written.
        value: String,
        /// The accepted values, quoted and comma-separated.
        supported: String,
    },
    /// A key a window does not have.
    #[error("{field}: unknown field {name:?}")]
    UnknownField {
        /// Path of the window.
        field: String,
        /// The unknown key.
        name: String,
    },
}

/// Gives up looking for the next open instant after this many hops between window edges
/// (a chain of deny windows, or allow windows all covered by deny windows).
const MAX_HOPS: usize = 1000;

/// The weekday names the `cron` crate reads, from Sunday (cron's 0).
const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// The fields a window may have.
const FIELDS: [&str; 4] = ["kind", "schedule", "duration", "timeZone"];

/// The annotation of `rollout`, parsed: `Ok(None)` without the annotation or with an empty list
/// (no restriction, as Argo CD without sync windows).
pub fn of_rollout(rollout: &Rollout) -> Result<Option<PromotionWindows>, WindowError> {
    let Some(text) = rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(PROMOTION_WINDOWS))
    else {
        return Ok(None);
    };
    let windows = parse(text)?;
    Ok((!windows.windows.is_empty()).then_some(windows))
}

/// Parses the annotation value: a YAML or JSON list of windows. Blank text is an empty list.
pub fn parse(text: &str) -> Result<PromotionWindows, WindowError> {
    let root = format!("metadata.annotations[{PROMOTION_WINDOWS}]");
    if text.trim().is_empty() {
        return Ok(PromotionWindows::default());
    }
    let value: Value = serde_saphyr::from_str(text).map_err(|error| {
        let error = error.to_string();
        let first = error.lines().next().unwrap_or_default();
        WindowError::Invalid {
            field: root.clone(),
            value: text.to_string(),
            detail: format!(
                "not YAML or JSON: {}",
                first.strip_prefix("error: ").unwrap_or(first)
            ),
        }
    })?;
    let Value::Array(items) = value else {
        return Err(WindowError::Invalid {
            field: root,
            value: text.to_string(),
            detail:
                r#"must be a list of windows, e.g. [{"schedule": "0 9 * * 1-5", "duration": "8h"}]"#
                    .to_string(),
        });
    };
    let windows = items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_window(&format!("{root}[{index}]"), item))
        .collect::<Result<_, _>>()?;
    Ok(PromotionWindows { windows })
}

fn parse_window(field: &str, item: &Value) -> Result<Window, WindowError> {
    let Value::Object(object) = item else {
        return Err(WindowError::Invalid {
            field: field.to_string(),
            value: item.to_string(),
            detail: "must be an object with schedule and duration".to_string(),
        });
    };
    if let Some(name) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        return Err(WindowError::UnknownField {
            field: field.to_string(),
            name: name.clone(),
        });
    }
    let kind = match string_field(object, field, "kind")? {
        None | Some("allow") => WindowKind::Allow,
        Some("deny") => WindowKind::Deny,
        Some(other) => {
            return Err(WindowError::Unsupported {
                field: format!("{field}.kind"),
                value: other.to_string(),
                supported: r#""allow", "deny""#.to_string(),
            });
        }
    };
    match string_field(object, field, "timeZone")? {
        None | Some("" | "UTC" | "Etc/UTC") => {}
        Some(other) => {
            return Err(WindowError::Unsupported {
                field: format!("{field}.timeZone"),
                value: other.to_string(),
                supported: r#""UTC""#.to_string(),
            });
        }
    }
    let schedule = required(object, field, "schedule")?;
    let schedules = crate_schedules(schedule).map_err(|detail| WindowError::Invalid {
        field: format!("{field}.schedule"),
        value: schedule.to_string(),
        detail,
    })?;
    let duration_text = required(object, field, "duration")?;
    let invalid_duration = |detail: &str| WindowError::Invalid {
        field: format!("{field}.duration"),
        value: duration_text.to_string(),
        detail: detail.to_string(),
    };
    let duration = parse_go_duration(duration_text)
        .ok()
        .and_then(|duration| Duration::from_std(duration).ok())
        .ok_or_else(|| invalid_duration(r#"must be a duration such as "8h" or "90m""#))?;
    if duration <= Duration::zero() {
        return Err(invalid_duration("must be greater than 0"));
    }
    Ok(Window {
        kind,
        schedule: schedule.to_string(),
        duration,
        schedules,
    })
}

/// A string field of a window, `None` when absent.
fn string_field<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<Option<&'a str>, WindowError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(other) => Err(WindowError::Invalid {
            field: format!("{field}.{key}"),
            value: other.to_string(),
            detail: "must be a string".to_string(),
        }),
    }
}

/// A string field that must be present and non-blank.
fn required<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    key: &str,
) -> Result<&'a str, WindowError> {
    match string_field(object, field, key)? {
        Some(text) if !text.trim().is_empty() => Ok(text.trim()),
        _ => Err(WindowError::Required {
            field: format!("{field}.{key}"),
        }),
    }
}

/// A cron expression as `cron` crate schedules whose union fires exactly when cron would.
fn crate_schedules(expression: &str) -> Result<Vec<Schedule>, String> {
    let expanded = match expression {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let (second, rest) = match fields.len() {
        5 => ("0", &fields[..]),
        6 => (fields[0], &fields[1..]),
        found => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), found {found}"
            ));
        }
    };
    let &[minute, hour, day_of_month, month, day_of_week] = rest else {
        return Err("expected 5 or 6 fields".to_string());
    };
    let weekdays = weekdays(day_of_week)?.map(|days| {
        days.iter()
            .filter_map(|&day| WEEKDAYS.get(day))
            .copied()
            .collect::<Vec<_>>()
            .join(",")
    });
    let build = |day_of_month: &str, day_of_week: &str| {
        Schedule::from_str(&format!(
            "{second} {minute} {hour} {day_of_month} {month} {day_of_week}"
        ))
        .map_err(|error| {
            // The crate's message repeats the converted expression with a caret; its last
            // line is the reason.
            let error = error.to_string();
            let reason = error.lines().rev().find(|line| !line.trim().is_empty());
            format!(
                "not a valid cron expression: {}",
                reason.unwrap_or_default()
            )
        })
    };
    let day_of_month_restricted = !matches!(day_of_month, "*" | "?");
    match weekdays {
        // cron: a day matches when either restricted day field matches.
        Some(days) if day_of_month_restricted => {
            Ok(vec![build(day_of_month, "*")?, build("*", &days)?])
        }
        Some(days) => Ok(vec![build(day_of_month, &days)?]),
        None => Ok(vec![build(day_of_month, "*")?]),
    }
}

/// The weekdays (0 = Sunday) a cron day-of-week field selects; `None` for `*` or `?`.
/// Items are `d`, `a-b`, `*/s`, `a-b/s` and `a/s` (from `a` to Saturday), days `0`-`7`
/// (`7` is Sunday too) or `sun`…`sat`.
fn weekdays(field: &str) -> Result<Option<BTreeSet<usize>>, String> {
    if matches!(field, "*" | "?") {
        return Ok(None);
    }
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step = step
                    .parse::<usize>()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("day-of-week step {step:?} is not a positive number"))?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (start, end) = if matches!(range, "*" | "?") {
            (0, 6)
        } else if let Some((start, end)) = range.split_once('-') {
            (weekday(start)?, weekday(end)?)
        } else {
            let day = weekday(range)?;
            (day, if step.is_some() { 6 } else { day })
        };
        if start > end {
            return Err(format!("day-of-week range {range:?} runs backwards"));
        }
        days.extend((start..=end).step_by(step.unwrap_or(1)).map(|day| day % 7));
    }
    Ok(Some(days))
}

/// Day names cron accepts, from Sunday.
const DAY_NAMES: [(&str, &str); 7] = [
    ("sun", "sunday"),
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
];

/// One day of the week: `0`-`7` (both ends Sunday) or a name, case-insensitive.
fn weekday(text: &str) -> Result<usize, String> {
    if let Ok(number) = text.parse::<usize>()
        && number <= 7
    {
        return Ok(number);
    }
    let lower = text.to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|(short, full)| lower == *short || lower == *full)
        .ok_or_else(|| format!("{text:?} is not a day of the week (0-7 or sun-sat)"))
}

impl Window {
    /// The end of the occurrence active at `at`, if one is.
    fn active_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The latest start at or before `at` has the latest end (all occurrences last the same).
        let bound = at.trunc_subsecs(0) + Duration::seconds(1);
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after_owned(bound).next_back())
            .map(|start| start + self.duration)
            .filter(|end| *end > at)
            .max()
    }

    /// The first occurrence starting after `at`.
    fn next_start(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedules
            .iter()
            .filter_map(|schedule| schedule.after(&at).next())
            .min()
    }
}

/// What holds promotion at one instant.
enum Verdict {
    Open,
    DeniedUntil(DateTime<Utc>),
    NoAllowActive,
}

impl PromotionWindows {
    fn of_kind(&self, kind: WindowKind) -> impl Iterator<Item = &Window> + Clone {
        self.windows
            .iter()
            .filter(move |window| window.kind == kind)
    }

    fn verdict(&self, at: DateTime<Utc>) -> Verdict {
        if let Some(end) = self
            .of_kind(WindowKind::Deny)
            .filter_map(|window| window.active_until(at))
            .max()
        {
            return Verdict::DeniedUntil(end);
        }
        let mut allows = self.of_kind(WindowKind::Allow).peekable();
        if allows.peek().is_none() || allows.any(|window| window.active_until(at).is_some()) {
            Verdict::Open
        } else {
            Verdict::NoAllowActive
        }
    }

    /// Promotion is allowed at `now`: no deny window is active, and an allow window is (or
    /// there is none).
    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        matches!(self.verdict(now), Verdict::Open)
    }

    /// The first instant at or after `now` at which promotion is allowed (`now` itself when
    /// open); `None` when no schedule fires again or none is found within 1000 window edges.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut at = now;
        for _ in 0..MAX_HOPS {
            at = match self.verdict(at) {
                Verdict::Open => return Some(at),
                Verdict::DeniedUntil(end) => end,
                Verdict::NoAllowActive => self
                    .of_kind(WindowKind::Allow)
                    .filter_map(|window| window.next_start(at))
                    .min()?,
            };
        }
        None
    }
}

/// Promotion is allowed at `now` (see [`PromotionWindows::is_open`]).
pub fn is_open(windows: &PromotionWindows, now: DateTime<Utc>) -> bool {
    windows.is_open(now)
}

/// The first instant at or after `now` at which promotion is allowed (see
/// [`PromotionWindows::next_open`]).
pub fn next_open(windows: &PromotionWindows, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    windows.next_open(now)
}

/// The status message of a Rollout held by its windows.
pub fn waiting_message(next: Option<DateTime<Utc>>) -> String {
    match next {
        Some(next) => format!(
            "Waiting for promotion window: next opens at {}",
            next.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => "Waiting for promotion window: no window opens again".to_string(),
    }
}
