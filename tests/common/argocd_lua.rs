//! Argo CD's own Lua scripts for the `argoproj.io` kinds (health, action discovery, actions),
//! run by a real Lua 5.1 interpreter (Debian's `lua5.1`; Argo CD embeds gopher-lua, a Lua 5.1)
//! on objects given as JSON, so tests check Davy's statuses against the scripts themselves
//! rather than against a restatement of them.
//!
//! The object becomes the global `obj` (a Lua table constructor written from the JSON); the
//! script's result is written back as JSON by a small encoder that is part of the harness. Lua
//! has one empty table for `[]` and `{}`, so results are compared with [`same`], which treats
//! empty arrays, empty objects and nulls as absent, as Argo CD's own diff of the result does.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

/// The scripts' folder (`conformance/argocd-health`), or `None` (with the conformance notice)
/// when the shared folder is absent.
pub fn scripts_dir() -> Option<PathBuf> {
    super::conformance_dir().map(|dir| dir.join("argocd-health"))
}

/// The Lua 5.1 interpreter: `$DAVY_LUA` or `lua5.1` on the PATH, or a panic naming the Debian
/// package (scripts/test installs it).
pub fn interpreter() -> PathBuf {
    if let Some(path) = std::env::var_os("DAVY_LUA") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("lua5.1"))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the `lua5.1` interpreter is not on the PATH: install the Debian package `lua5.1` \
             (apt-get install lua5.1) or run scripts/test as root"
        )
    })
}

/// Writes `value` as a Lua table constructor (objects keyed by `["name"]`, arrays 1-based).
pub fn to_lua(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => lua_string(text, out),
        Value::Array(items) => {
            out.push('{');
            for item in items {
                to_lua(item, out);
                out.push(',');
            }
            out.push('}');
        }
        Value::Object(fields) => {
            out.push('{');
            for (key, item) in fields {
                out.push('[');
                lua_string(key, out);
                out.push_str("]=");
                to_lua(item, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

fn lua_string(text: &str, out: &mut String) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Control characters as decimal escapes, which Lua 5.1 reads in strings; every
            // other character (UTF-8 included) goes through verbatim.
            c if (c as u32) < 32 || c as u32 == 127 => out.push_str(&format!("\\{:03}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The harness's JSON encoder for the script's result: a table whose keys are exactly 1..n is
/// an array, any other table an object with sorted keys; integral numbers print as integers.
const ENCODER: &str = r#"
local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return n > 0
end
local function esc(s)
  return (string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end))
end
local function enc(v)
  local t = type(v)
  if t == "nil" then return "null"
  elseif t == "boolean" then return tostring(v)
  elseif t == "number" then
    if v == math.floor(v) and math.abs(v) < 1e15 then return string.format("%d", v) end
    return string.format("%.17g", v)
  elseif t == "string" then return '"' .. esc(v) .. '"'
  elseif t == "table" then
    local parts = {}
    if is_array(v) then
      for i = 1, #v do parts[#parts + 1] = enc(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      parts[#parts + 1] = '"' .. esc(tostring(k)) .. '":' .. enc(v[k])
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot encode a " .. t)
end
"#;

/// Runs `script` with `obj` set to `object`; the script's return value as JSON.
pub fn run(script: &Path, object: &Value) -> Value {
    let mut program = String::from("obj = ");
    to_lua(object, &mut program);
    program.push('\n');
    program.push_str(ENCODER);
    program.push_str("local result = dofile(");
    lua_string(&script.display().to_string(), &mut program);
    program.push_str(")\nio.write(enc(result))\n");
    let mut child = Command::new(interpreter())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lua5.1");
    child
        .stdin
        .take()
        .expect("lua stdin")
        .write_all(program.as_bytes())
        .expect("write the program to lua5.1");
    let output = child.wait_with_output().expect("lua5.1 output");
    assert!(
        output.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: result is not JSON ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `hs.status` and `hs.message` of `<kind>/health.lua` on `object` (`None` without the
/// conformance folder).
pub fn health(kind: &str, object: &Value) -> Option<(String, String)> {
    let script = scripts_dir()?.join(kind).join("health.lua");
    let hs = run(&script, object);
    let text = |field: &str| hs[field].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("message")))
}

/// The actions `<kind>/actions/discovery.lua` offers on `object`: name → enabled.
pub fn discover(kind: &str, object: &Value) -> Option<Vec<(String, bool)>> {
    let script = scripts_dir()?
        .join(kind)
        .join("actions")
        .join("discovery.lua");
    let actions = run(&script, object);
    let mut offered: Vec<(String, bool)> = actions
        .as_object()
        .expect("discovery returns a table of actions")
        .iter()
        .map(|(name, action)| (name.clone(), action["disabled"] != true))
        .collect();
    offered.sort();
    Some(offered)
}

/// `object` after `<kind>/actions/<action>/action.lua`.
pub fn act(kind: &str, action: &str, object: &Value) -> Option<Value> {
    let script = scripts_dir()?
        .join(kind)
        .join("actions")
        .join(action)
        .join("action.lua");
    Some(run(&script, object))
}

/// `value` without nulls, empty arrays and empty objects (recursively): what survives a trip
/// through a Lua table.
pub fn pruned(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), pruned(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pruned).collect()),
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

/// Whether two objects are the same once Lua's lost distinctions are set aside.
pub fn same(left: &Value, right: &Value) -> bool {
    pruned(left) == pruned(right)
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`, Lua-aware: fields that are
/// empty or null on both sides are unchanged, a field gone from `new` becomes `null`.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    let (old, new) = (pruned(old), pruned(new));
    diff(&old, &new)
}

fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(before), Value::Object(after)) => {
            let mut patch = Map::new();
            for (key, value) in after {
                match before.get(key) {
                    Some(previous) => {
                        if let Some(change) = diff(previous, value) {
                            patch.insert(key.clone(), change);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), value.clone());
                    }
                }
            }
            for key in before.keys() {
                if !after.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}
