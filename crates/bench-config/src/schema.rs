//! The schema check (every unknown key, wrong type and out-of-range value, each with its key
//! path) and the `--override help` listing. Both walk the JSON schema derived from the config
//! types, so the types are the single source of truth.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::Config;
use crate::errors::Errors;

fn root() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(|| {
        serde_json::to_value(schemars::schema_for!(Config)).expect("schema serializes")
    })
}

fn resolve(s: &Value) -> &Value {
    let mut cur = s;
    while let Some(r) = cur.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        match root().get("$defs").and_then(|d| d.get(name)) {
            Some(next) => cur = next,
            None => break,
        }
    }
    cur
}

/// Alternatives of a schema node (anyOf/oneOf), if it has them.
fn alternatives(s: &Value) -> Option<&Vec<Value>> {
    s.get("anyOf")
        .or_else(|| s.get("oneOf"))
        .and_then(Value::as_array)
}

fn types(s: &Value) -> Vec<&str> {
    match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => true,
    }
}

fn describe_type(s: &Value) -> String {
    let s = resolve(s);
    if let Some(vals) = enum_values(s) {
        return vals
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join("|");
    }
    if let Some(alts) = alternatives(s) {
        let is_null = |a: &&Value| types(resolve(a)) == ["null"];
        let parts: Vec<String> = alts
            .iter()
            .filter(|a| !is_null(a))
            .map(describe_type)
            .collect();
        let nullable = alts.iter().any(|a| types(resolve(a)).contains(&"null"));
        return format!(
            "{}{}",
            parts.join(" or "),
            if nullable { " (or null)" } else { "" }
        );
    }
    let ts = types(s);
    let nullable = ts.contains(&"null");
    let mut base: Vec<String> = ts
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match *t {
            "integer" => format_int(s).to_string(),
            "number" => "number".to_string(),
            "boolean" => "bool".to_string(),
            "string" => "string".to_string(),
            "array" => format!(
                "list of {}",
                s.get("items")
                    .map(describe_type)
                    .unwrap_or_else(|| "any".into())
            ),
            "object" => {
                let values = s.get("additionalProperties").map(resolve);
                if s.get("properties").is_some() {
                    "mapping".to_string()
                } else if values.is_some_and(|v| v.get("properties").is_some()) {
                    "map of name to mapping".to_string()
                } else {
                    "map of string".to_string()
                }
            }
            other => other.to_string(),
        })
        .collect();
    if base.is_empty() {
        base.push("any".into());
    }
    format!(
        "{}{}",
        base.join("|"),
        if nullable { " (or null)" } else { "" }
    )
}

fn format_int(s: &Value) -> &str {
    match s.get("format").and_then(Value::as_str) {
        Some("uint8" | "uint16" | "uint32" | "uint64" | "uint") => "unsigned integer",
        _ => "integer",
    }
}

/// Enum values of a unit-variant enum: `enum: [...]` or `oneOf: [{const}, ...]`.
fn enum_values(s: &Value) -> Option<Vec<Value>> {
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return Some(e.clone());
    }
    if let Some(c) = s.get("const") {
        return Some(vec![c.clone()]);
    }
    let alts = s.get("oneOf").and_then(Value::as_array)?;
    let mut out = Vec::new();
    for a in alts {
        out.extend(enum_values(resolve(a))?);
    }
    Some(out)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Checks `tree` against the config schema; pushes one error per problem.
pub fn check(tree: &Value, errors: &mut Errors) {
    walk(root(), tree, "", errors);
}

/// The schema node of the dotted `key` (no list indices), when the config has it.
fn node(key: &str) -> Option<&'static Value> {
    let mut s = resolve(root());
    for seg in key.split('.') {
        s = resolve(s.get("properties")?.get(seg)?);
    }
    Some(s)
}

/// The string values the enum at `key` takes (`dataset.type`: `random`, `sharegpt`, ...).
pub fn enum_strings(key: &str) -> Vec<String> {
    node(key)
        .and_then(enum_values)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Keys of `tree` whose values are file paths (schema format `bench-path`, and tokenizers,
/// which may be one).
pub fn path_keys(tree: &Value) -> Vec<String> {
    fn walk(s: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
        let s = resolve(s);
        let format = s.get("format").and_then(Value::as_str);
        if matches!(format, Some("bench-path" | "bench-tokenizer")) && v.is_string() {
            out.push(path.to_string());
            return;
        }
        if let Value::Object(m) = v {
            let props = s.get("properties");
            // a map (`datasets:`): every value has the schema of additionalProperties
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, x) in m {
                if let Some(ks) = props.and_then(|p| p.get(k)).or(additional) {
                    walk(ks, x, &join(path, k), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root(), tree, "", &mut out);
    out
}

fn walk(schema: &Value, v: &Value, path: &str, errors: &mut Errors) {
    let s = resolve(schema);
    if let Some(vals) = enum_values(s) {
        if !vals.contains(v) {
            let list = vals
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(|s| format!("`{s}`"))
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>();
            let hint = v
                .as_str()
                .and_then(|got| closest(got, vals.iter().filter_map(Value::as_str)))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            errors.push(
                path,
                format!("{} is not one of {}{hint}", show(v), list.join(", ")),
            );
        }
        return;
    }
    if let Some(alts) = alternatives(s) {
        // Option<T>: null matches the null branch; anything else is checked against the others.
        let mut best: Option<Errors> = None;
        for a in alts {
            let mut e = Errors::default();
            walk(a, v, path, &mut e);
            if e.is_empty() {
                return;
            }
            let is_null_branch = types(resolve(a)) == ["null"];
            if !is_null_branch && best.as_ref().is_none_or(|b| e.0.len() < b.0.len()) {
                best = Some(e);
            }
        }
        if let Some(b) = best {
            errors.0.extend(b.0);
        }
        return;
    }
    let ts = types(s);
    if !ts.is_empty() && !ts.iter().any(|t| type_matches(t, v)) {
        let want: Vec<&str> = ts
            .iter()
            .map(|t| match *t {
                "integer" => "an integer",
                "number" => "a number",
                "boolean" => "a boolean (true/false)",
                "string" => "a string",
                "array" => "a list",
                "object" => "a mapping",
                "null" => "null",
                o => o,
            })
            .collect();
        errors.push(
            path,
            if v.is_null() {
                format!(
                    "expected {}, got no value (null; YAML's .inf and .nan are not accepted)",
                    want.join(" or ")
                )
            } else {
                format!(
                    "expected {}, got {} {}",
                    want.join(" or "),
                    kind_of(v),
                    show(v)
                )
            },
        );
        return;
    }
    match v {
        Value::String(text) => {
            let format = s.get("format").and_then(Value::as_str).unwrap_or("");
            if let Some(Err(msg)) = crate::parsed::check_format(format, text) {
                errors.push(path, msg);
            }
        }
        Value::Number(_) => check_range(s, v, path, errors),
        Value::Object(m) => check_object(s, m, path, errors),
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate() {
                    walk(items, x, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!("{}...", &s[..40])
    } else {
        s
    }
}

fn check_range(s: &Value, v: &Value, path: &str, errors: &mut Errors) {
    let x = v.as_f64().unwrap_or(0.0);
    let lim = |k: &str| s.get(k).and_then(Value::as_f64);
    let unsigned = format_int(s) == "unsigned integer";
    if (unsigned
        || s.get("format")
            .and_then(Value::as_str)
            .is_some_and(|f| f.starts_with("uint")))
        && x < 0.0
    {
        errors.push(path, format!("{} must not be negative", show(v)));
        return;
    }
    let max_for_format = match s.get("format").and_then(Value::as_str) {
        Some("uint8") => Some(u8::MAX as f64),
        Some("uint16") => Some(u16::MAX as f64),
        Some("uint32") => Some(u32::MAX as f64),
        Some("int32") => Some(i32::MAX as f64),
        _ => None,
    };
    if let Some(m) = max_for_format
        && x > m
    {
        errors.push(path, format!("{} is too large (at most {m})", show(v)));
        return;
    }
    if let Some(m) = lim("minimum")
        && x < m
    {
        errors.push(path, format!("{} is out of range: must be >= {m}", show(v)));
    } else if let Some(m) = lim("exclusiveMinimum")
        && x <= m
    {
        errors.push(path, format!("{} is out of range: must be > {m}", show(v)));
    } else if let Some(m) = lim("maximum")
        && x > m
    {
        errors.push(path, format!("{} is out of range: must be <= {m}", show(v)));
    } else if let Some(m) = lim("exclusiveMaximum")
        && x >= m
    {
        errors.push(path, format!("{} is out of range: must be < {m}", show(v)));
    }
}

fn check_object(s: &Value, m: &Map<String, Value>, path: &str, errors: &mut Errors) {
    let props = s.get("properties").and_then(Value::as_object);
    let additional = s.get("additionalProperties");
    for (k, v) in m {
        let p = join(path, k);
        if let Some(ps) = props.and_then(|ps| ps.get(k)) {
            walk(ps, v, &p, errors);
        } else if let Some(a) = additional.filter(|a| a.is_object()) {
            walk(a, v, &p, errors);
        } else if props.is_some() || additional == Some(&Value::Bool(false)) {
            errors.push(&p, unknown_key_msg(k, path, props));
        }
    }
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !m.contains_key(r) {
                errors.push(&join(path, r), "is required");
            }
        }
    }
}

/// The candidate nearest to `got` (a typo's likely intent), when one is near enough.
pub(crate) fn closest<'a>(got: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::normalized_damerau_levenshtein(got, c), c))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn unknown_key_msg(k: &str, path: &str, props: Option<&Map<String, Value>>) -> String {
    if let Some(c) = props.and_then(|ps| closest(k, ps.keys().map(String::as_str))) {
        return format!("unknown key; did you mean `{c}`?");
    }
    // The same name elsewhere in the tree (`workload.target_qps` -> `workload.constant.target_qps`).
    let mut all = Vec::new();
    list_keys(root(), "", &mut all);
    let exact: Vec<&String> = all
        .iter()
        .map(|(p, _)| p)
        .filter(|p| p.rsplit('.').next() == Some(k))
        .collect();
    let under: Vec<&&String> = exact
        .iter()
        .filter(|p| path.is_empty() || p.starts_with(&format!("{path}.")))
        .collect();
    if let Some(p) = under.first().or(exact.first().as_ref()) {
        return format!("unknown key; did you mean `{p}`?");
    }
    match props {
        Some(ps) if !ps.is_empty() => {
            format!(
                "unknown key; valid keys here: {}",
                ps.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
            )
        }
        _ => "unknown key".to_string(),
    }
}

/// Every leaf key path with its schema node.
fn list_keys(schema: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    let s = resolve(schema);
    let nested = |s: &Value| -> Option<Value> {
        // Option<Struct> or Vec<Struct>: descend into the struct.
        if s.get("properties").is_some() {
            return Some(s.clone());
        }
        if let Some(items) = s.get("items").map(resolve)
            && items.get("properties").is_some()
        {
            return Some(items.clone());
        }
        None
    };
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, ps) in props {
            let p = join(prefix, k);
            let r = resolve(ps);
            if r.get("properties").is_some() {
                list_keys(r, &p, out);
            } else if let Some(inner) = nested(r) {
                out.push((p.clone(), ps.clone()));
                list_keys(&inner, &format!("{p}[]"), out);
            } else {
                out.push((p, ps.clone()));
            }
        }
    }
}

/// The `--override help` text: every key with its type, default and description.
pub fn help_text() -> String {
    let defaults = serde_json::to_value(Config::default()).expect("config serializes");
    let mut keys = Vec::new();
    list_keys(root(), "", &mut keys);
    let mut out = String::from(
        "Config keys (set in config.yaml, as BENCH_A__B env vars, or with --override key=value; values are YAML):\n\n",
    );
    for (path, s) in keys {
        let r = resolve(&s);
        let desc = s
            .get("description")
            .or_else(|| r.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        let default = if path.contains("[]") {
            String::new()
        } else {
            crate::template::lookup(&defaults, &path)
                .map(|v| format!("  [default: {}]", compact(v)))
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "{path}  <{}>{default}\n    {desc}\n",
            describe_type(&s)
        ));
    }
    out
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", &s[..60])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_contract_keys_with_types_and_defaults() {
        let h = help_text();
        for k in [
            "run_dir  <string>",
            "seed  <unsigned integer>  [default: 42]",
            "tokenizer  <string>",
            "dataset.type  <synthetic_shared|synthetic_multiturn|sharegpt|client_trace|random|custom|image_jobs>",
            "dataset.random.num_prompts",
            "dataset.sharegpt.path",
            "workload.type  <constant|synthetic|stat|azure|mooncake|concurrency>",
            "workload.constant.target_qps  <number>",
            "workload.stat.trace_type  <maas|cloudide>",
            "workload.concurrency.concurrency",
            "dataset.synthetic_shared.groups[].shared_prop",
            "client.api  <openai-completions|openai-chat|tgi|template>",
            "analysis.slo.ttft_ms",
        ] {
            assert!(h.contains(k), "missing {k} in:\n{h}");
        }
    }
}
