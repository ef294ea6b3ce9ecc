//! What the simulated model writes when a tool is forced (structured output): a value that
//! follows the tool's JSON Schema, filled from the conversation where it can (a `summary` is
//! the conversation's first words, an enum takes the option the conversation names, a date or
//! time the one it mentions), or one that breaks the schema (the `InvalidOutput` fault).

use serde_json::{Map, Value, json};

/// A schema-valid value for `schema`, drawn from `said` where possible.
pub fn example_for(schema: &Value, said: &str) -> Value {
    value(schema, "", said, 0)
}

/// A value that breaks `schema`: required properties missing, the first property of the wrong
/// type.
pub fn invalid_for(schema: &Value) -> Value {
    let mut out = Map::new();
    if let Some((k, p)) = schema["properties"].as_object().and_then(|m| m.iter().next()) {
        let wrong = if p["type"] == "string" { json!(12345) } else { json!("not the right type") };
        out.insert(k.clone(), wrong);
    }
    Value::Object(out)
}

fn value(schema: &Value, name: &str, said: &str, depth: usize) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(options) = schema["enum"].as_array() {
        // the option the conversation names most often (by its first letters: "cancel" counts
        // for "cancelled"); ties go to the first
        let lower = said.to_lowercase();
        let count = |o: &Value| o.as_str().map_or(0, |s| lower.matches(&s.to_lowercase().chars().take(5).collect::<String>()).count());
        let best = options.iter().fold(None, |best: Option<(&Value, usize)>, o| match best {
            Some((_, n)) if n >= count(o) => best,
            _ => Some((o, count(o))),
        });
        return best.filter(|(_, n)| *n > 0).map(|(o, _)| o).or(options.first()).cloned().unwrap_or(Value::Null);
    }
    let kind = match &schema["type"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null").to_string(),
        _ if schema["properties"].is_object() => "object".into(),
        _ => "string".into(),
    };
    match kind.as_str() {
        "object" if depth < 6 => {
            let mut out = Map::new();
            for (k, p) in schema["properties"].as_object().into_iter().flatten() {
                out.insert(k.clone(), value(p, k, said, depth + 1));
            }
            Value::Object(out)
        }
        "array" => json!([value(&schema["items"], name, said, depth + 1)]),
        "boolean" => json!(!said.to_lowercase().contains("not ")),
        "integer" => json!(clamp(schema, first_number(said).unwrap_or(1.0)).round() as i64),
        "number" => json!(clamp(schema, first_number(said).unwrap_or(1.0))),
        "null" => Value::Null,
        _ => json!(text_for(schema, name, said)),
    }
}

fn clamp(schema: &Value, n: f64) -> f64 {
    let lo = schema["minimum"].as_f64().unwrap_or(f64::MIN);
    let hi = schema["maximum"].as_f64().unwrap_or(f64::MAX);
    n.clamp(lo, hi)
}

fn first_number(said: &str) -> Option<f64> {
    said.split(|c: char| !c.is_ascii_digit() && c != '.').find_map(|w| w.trim_matches('.').parse().ok())
}

fn text_for(schema: &Value, name: &str, said: &str) -> String {
    let words: Vec<&str> = said.split_whitespace().collect();
    let lname = name.to_lowercase();
    let mut s = if schema["format"] == "date" {
        "2026-12-04".to_string()
    } else if lname.contains("time") {
        words.iter().zip(words.iter().skip(1)).find(|(_, b)| matches!(b.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase().as_str(), "am" | "pm")).map(|(a, b)| format!("{a} {b}")).unwrap_or_else(|| "unknown".into())
    } else if lname.contains("summary") || lname.contains("reason") || lname.contains("explanation") {
        words.iter().take(40).copied().collect::<Vec<_>>().join(" ")
    } else {
        words.iter().take(6).copied().collect::<Vec<_>>().join(" ")
    };
    if s.trim().is_empty() {
        s = "unknown".into();
    }
    let min = schema["minLength"].as_u64().unwrap_or(0) as usize;
    while s.chars().count() < min {
        s.push('.');
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        s = s.chars().take(max as usize).collect();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schema_and_reads_the_conversation() {
        let schema = json!({"type": "object", "required": ["summary", "outcome", "score", "booked"], "properties": {
            "summary": {"type": "string"}, "outcome": {"enum": ["booked", "cancelled", "other"]},
            "score": {"type": "integer", "minimum": 0, "maximum": 10}, "booked": {"type": "boolean"},
            "time": {"type": ["string", "null"]}}});
        let v = example_for(&schema, "I want an appointment at 3 pm. It is booked for 3 pm");
        assert_eq!(v["outcome"], "booked");
        assert_eq!(v["score"], 3);
        assert_eq!(v["time"], "3 pm.");
        assert!(v["summary"].as_str().unwrap().starts_with("I want an appointment"));
        assert_eq!(invalid_for(&schema)["summary"], 12345);
    }
}
