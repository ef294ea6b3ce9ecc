//! The Prometheus text exposition format, version 0.0.4: an encoder and a validating parser
//! (for tests and load tools that read a scrape).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

/// The `content-type` of a scrape.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value: integers are written exactly, floats as Prometheus spells them.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

pub(crate) fn write_float(out: &mut String, v: f64) {
    match v {
        v if v.is_nan() => out.push_str("NaN"),
        f64::INFINITY => out.push_str("+Inf"),
        f64::NEG_INFINITY => out.push_str("-Inf"),
        v => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Builds one scrape.
#[derive(Default)]
pub struct Text {
    out: String,
}

impl Text {
    pub fn new() -> Self {
        Text { out: String::with_capacity(8192) }
    }

    /// `# HELP` and `# TYPE` of a metric family (before its samples).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        let _ = writeln!(self.out, "\n# TYPE {name} {}", kind.as_str());
    }

    /// One sample: `name{label="value",...} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label(&mut self.out, v);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::Float(v) => write_float(&mut self.out, v),
        }
        self.out.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed and validated scrape.
#[derive(Debug, Default)]
pub struct Scrape {
    pub samples: Vec<Sample>,
    /// Metric family → its `# TYPE`.
    pub types: HashMap<String, String>,
}

impl Scrape {
    /// The value of the series `name` with exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples.iter().find(|s| s.name == name && s.labels.len() == labels.len() && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))).map(|s| s.value)
    }

    /// The sum over every series of `name` that has (at least) `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples.iter().filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))).map(|s| s.value).sum()
    }
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':') && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn parse_float(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value `{s}`")),
    }
}

/// `{a="x",b="y"}` at the start of `s`: the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = &s[1..];
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without `=`")?;
        let key = rest[..eq].trim();
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name `{key}`"));
        }
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|c| c.1) != Some('"') {
            return Err(format!("label `{key}`: value not quoted"));
        }
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label `{key}`: unterminated value")),
                Some((i, '"')) => break eq + 1 + i + 1,
                Some((_, '\\')) => match chars.next().map(|c| c.1) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => return Err(format!("label `{key}`: bad escape {other:?}")),
                },
                Some((_, '\n')) => return Err(format!("label `{key}`: raw newline")),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label `{key}` twice"));
        }
        rest = rest[end..].trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.starts_with('}') => {}
            None => return Err("labels not closed".into()),
        }
    }
}

/// The family a sample belongs to (histograms' `_bucket`, `_sum`, `_count`).
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|t| t == "histogram")
        {
            return base;
        }
    }
    name
}

/// Parses and validates a scrape: line syntax, names, label escapes, one `# TYPE` per family
/// before its samples, no duplicate series, and histograms whose buckets are cumulative with
/// a `+Inf` bucket equal to `_count` and a `_sum`.
pub fn parse(text: &str) -> Result<Scrape, String> {
    let mut scrape = Scrape::default();
    let mut seen_series = HashSet::new();
    let mut sampled = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut parts = c.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !matches!(kind, "counter" | "gauge" | "histogram" | "summary" | "untyped") {
                        return Err(at(format!("unknown type `{kind}`")));
                    }
                    if sampled.contains(name) || scrape.types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(at("TYPE repeated or after samples".into()));
                    }
                }
                (Some("HELP"), Some(name), _) if !valid_name(name) => return Err(at("bad name".into())),
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(at("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') { parse_labels(&line[name_end..]).map_err(at)? } else { (BTreeMap::new(), &line[name_end..]) };
        let mut fields = rest.split_whitespace();
        let value = parse_float(fields.next().ok_or_else(|| at("no value".into()))?).map_err(at)?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>().map_err(|_| at("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("trailing text".into()));
        }
        if !seen_series.insert((name.to_string(), labels.clone())) {
            return Err(at("duplicate series".into()));
        }
        sampled.insert(family_of(name, &scrape.types).to_string());
        scrape.samples.push(Sample { name: name.to_string(), labels, value });
    }
    check_histograms(&scrape)?;
    Ok(scrape)
}

fn check_histograms(scrape: &Scrape) -> Result<(), String> {
    for (family, _) in scrape.types.iter().filter(|(_, t)| *t == "histogram") {
        let bucket = format!("{family}_bucket");
        let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
        for s in scrape.samples.iter().filter(|s| s.name == bucket) {
            let le = s.labels.get("le").ok_or_else(|| format!("{bucket} without le"))?;
            let mut key = s.labels.clone();
            key.remove("le");
            series.entry(key).or_default().push((parse_float(le)?, s.value));
        }
        for (labels, buckets) in series {
            let l: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if buckets.windows(2).any(|w| w[1].0 <= w[0].0 || w[1].1 < w[0].1) {
                return Err(format!("{family}{labels:?}: buckets not ascending and cumulative"));
            }
            let last = buckets.last().copied().unwrap_or_default();
            let count = scrape.get(&format!("{family}_count"), &l);
            if last.0 != f64::INFINITY || count != Some(last.1) {
                return Err(format!("{family}{labels:?}: +Inf bucket {last:?} does not match _count {count:?}"));
            }
            if scrape.get(&format!("{family}_sum"), &l).is_none() {
                return Err(format!("{family}{labels:?}: no _sum"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_families_and_samples() {
        let mut t = Text::new();
        t.family("x_total", "Line one\nback\\slash", Kind::Counter);
        t.sample("x_total", &[("a", "q\"uo\\te\nnl"), ("b", "plain")], 3u64);
        t.sample("x_total", &[], f64::INFINITY);
        t.family("g", "g", Kind::Gauge);
        t.sample("g", &[], 0.25);
        let text = t.finish();
        assert_eq!(text, "# HELP x_total Line one\\nback\\\\slash\n# TYPE x_total counter\nx_total{a=\"q\\\"uo\\\\te\\nnl\",b=\"plain\"} 3\nx_total +Inf\n# HELP g g\n# TYPE g gauge\ng 0.25\n");
        let s = parse(&text).unwrap();
        assert_eq!(s.get("x_total", &[("a", "q\"uo\\te\nnl"), ("b", "plain")]), Some(3.0), "escapes round-trip");
        assert_eq!(s.types["g"], "gauge");
    }

    #[test]
    fn the_parser_refuses_what_prometheus_refuses() {
        for (bad, why) in [
            ("x{a=\"1\"} 1\nx{a=\"1\"} 2\n", "duplicate"),
            ("x{a=1} 1\n", "not quoted"),
            ("x{a=\"\\q\"} 1\n", "bad escape"),
            ("x{a=\"1\" 1\n", "not closed"),
            ("x{a=\"1} 1\n", "unterminated"),
            ("9x 1\n", "metric name"),
            ("x one\n", "bad value"),
            ("x 1\n# TYPE x gauge\n", "after samples"),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", "cumulative"),
            ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n", "_count"),
            ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 2\n", "_sum"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert!(parse("# a comment\n\nx{a=\"1\",} 1 1700000000000\nx_y -Inf\nz NaN\n").is_ok());
    }
}
