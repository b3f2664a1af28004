//! `${VAR}` and `${other.key}` in string values, the way AIBrix's config uses them.
//!
//! `${name}` is replaced by the config value at `name` (a dotted key path) when there is one,
//! else by the environment variable `name`. A value that is exactly one template takes the
//! referenced value's type (so `concurrency: ${N}` with `N=8` is the integer 8). `$$` is a
//! literal `$`. Unresolvable names and cycles are errors naming the key.

use serde_json::Value;

use crate::errors::Errors;

/// `${now}`: the time the config was loaded, UTC, `20261206-193011`: the default run directory
/// uses it so runs never overwrite each other.
pub const NOW: &str = "now";

/// The load time as `${now}` gives it (the same for every use in one process).
pub fn now() -> String {
    static NOW_S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOW_S
        .get_or_init(|| jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S").to_string())
        .clone()
}

/// Resolves every template in `tree` in place.
pub fn resolve(tree: &mut Value, errors: &mut Errors) {
    let snapshot = tree.clone();
    let mut paths = Vec::new();
    collect_string_paths(&snapshot, String::new(), &mut paths);
    for path in paths {
        let Some(Value::String(s)) = lookup(&snapshot, &path) else {
            continue;
        };
        if !s.contains('$') {
            continue;
        }
        let mut stack = vec![path.clone()];
        match expand(&snapshot, s, &mut stack) {
            Ok(v) => {
                if let Some(slot) = lookup_mut(tree, &path) {
                    *slot = v;
                }
            }
            Err(msg) => errors.push(&path, msg),
        }
    }
}

fn collect_string_paths(v: &Value, prefix: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(prefix),
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_string_paths(v, p, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                collect_string_paths(v, format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn split_path(path: &str) -> Vec<either::Seg<'_>> {
    either::segments(path)
}

mod either {
    pub enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }
    pub fn segments(path: &str) -> Vec<Seg<'_>> {
        let mut out = Vec::new();
        for part in path.split('.') {
            let (name, rest) = part
                .split_once('[')
                .map(|(a, b)| (a, Some(b)))
                .unwrap_or((part, None));
            if !name.is_empty() {
                out.push(Seg::Key(name));
            }
            if let Some(rest) = rest {
                for idx in rest.split('[') {
                    if let Ok(i) = idx.trim_end_matches(']').parse() {
                        out.push(Seg::Index(i));
                    }
                }
            }
        }
        out
    }
}

pub(crate) fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in split_path(path) {
        cur = match seg {
            either::Seg::Key(k) => cur.get(k)?,
            either::Seg::Index(i) => cur.get(i)?,
        };
    }
    Some(cur)
}

/// Puts `defaults`' value back at `path` in `tree` (or, for a key the defaults don't have,
/// removes it), so the rest of a config with a bad value can still be checked.
pub(crate) fn restore_default(tree: &mut Value, defaults: &Value, path: &str) {
    if let Some(d) = lookup(defaults, path) {
        if let Some(v) = lookup_mut(tree, path) {
            *v = d.clone();
        }
        return;
    }
    let (parent, last) = match path.rsplit_once('.') {
        Some((p, k)) => (lookup_mut(tree, p), k),
        None => (Some(tree), path),
    };
    if let Some(Value::Object(m)) = parent {
        m.remove(last);
    }
}

pub(crate) fn lookup_mut<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in split_path(path) {
        cur = match seg {
            either::Seg::Key(k) => cur.get_mut(k)?,
            either::Seg::Index(i) => cur.get_mut(i)?,
        };
    }
    Some(cur)
}

fn expand(tree: &Value, s: &str, stack: &mut Vec<String>) -> Result<Value, String> {
    // Whole-value template keeps the referenced type.
    if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && !name.contains('}')
        && !name.contains('$')
    {
        return resolve_name(tree, name, stack);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
            let v = resolve_name(tree, &r[..end], stack)?;
            match v {
                Value::String(x) => out.push_str(&x),
                Value::Number(n) => out.push_str(&n.to_string()),
                Value::Bool(b) => out.push_str(&b.to_string()),
                Value::Null => {
                    return Err(format!(
                        "`${{{}}}` is null and cannot be part of a string",
                        &r[..end]
                    ));
                }
                _ => {
                    return Err(format!(
                        "`${{{}}}` is a list or mapping and cannot be part of a string",
                        &r[..end]
                    ));
                }
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn resolve_name(tree: &Value, name: &str, stack: &mut Vec<String>) -> Result<Value, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("empty `${}`".into());
    }
    if let Some(v) = lookup(tree, name) {
        if stack.iter().any(|p| p == name) {
            return Err(format!("template cycle: {} -> {name}", stack.join(" -> ")));
        }
        return match v {
            Value::String(s) if s.contains('$') => {
                stack.push(name.to_string());
                let r = expand(tree, s, stack);
                stack.pop();
                r
            }
            other => Ok(other.clone()),
        };
    }
    if name == NOW {
        return Ok(Value::String(now()));
    }
    match std::env::var(name) {
        Ok(val) => Ok(match serde_yaml::from_str::<Value>(&val) {
            Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
            _ => Value::String(val),
        }),
        Err(_) => Err(format!(
            "`${{{name}}}` is neither a config key nor a set environment variable"
        )),
    }
}
