//! Just enough of a TwiML reader for the fake carrier: the verbs our server returns.

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    /// `<Connect [action]><Stream url>` with its `<Parameter>`s.
    Stream { url: String, action: Option<String>, params: HashMap<String, String> },
    /// `<Dial>` a number or SIP URI; `whisper` is the `url` the callee's leg runs first.
    Dial { to: String, whisper: Option<String> },
    Say(String),
    Play { digits: Option<String> },
    Hangup,
}

fn re(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("static regex")
}

static VERB: LazyLock<regex::Regex> = LazyLock::new(|| re(r#"(?s)<(Connect|Dial|Say|Play|Hangup)\b([^>]*?)(/>|>(.*?)</(?:Connect|Dial|Say|Play)>)"#));
static STREAM: LazyLock<regex::Regex> = LazyLock::new(|| re(r#"<Stream\b([^>]*)>"#));
static PARAM: LazyLock<regex::Regex> = LazyLock::new(|| re(r#"<Parameter\b([^>]*)/>"#));
static TARGET: LazyLock<regex::Regex> = LazyLock::new(|| re(r#"(?s)<(Number|Sip)\b([^>]*)>(.*?)</(?:Number|Sip)>"#));

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(r#"\b{name}="([^"]*)""#)).ok()?;
    re.captures(tag).map(|c| unescape(&c[1]))
}

/// The verbs of a TwiML document, in order. Unknown verbs are skipped.
pub fn parse(xml: &str) -> Result<Vec<Verb>, String> {
    if !xml.contains("<Response") {
        return Err(format!("not TwiML: {}", xml.chars().take(120).collect::<String>()));
    }
    let mut out = Vec::new();
    for c in VERB.captures_iter(xml) {
        let (name, attrs, inner) = (&c[1], &c[2], c.get(4).map_or("", |m| m.as_str()));
        out.push(match name {
            "Connect" => {
                let Some(s) = STREAM.captures(inner) else { continue };
                let url = attr(&s[1], "url").ok_or("<Stream> without url")?;
                let params = PARAM.captures_iter(inner).filter_map(|m| Some((attr(&m[1], "name")?, attr(&m[1], "value")?))).collect();
                Verb::Stream { url, action: attr(attrs, "action"), params }
            }
            "Dial" => {
                match TARGET.captures(inner) {
                    Some(t) => Verb::Dial { to: unescape(t[3].trim()), whisper: attr(&t[2], "url") },
                    None => Verb::Dial { to: unescape(inner.trim()), whisper: None },
                }
            }
            "Say" => Verb::Say(unescape(inner.trim())),
            "Play" => Verb::Play { digits: attr(attrs, "digits") },
            _ => Verb::Hangup,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_verbs() {
        let v = parse(r#"<?xml version="1.0"?><Response><Connect action="https://h/after/c1" method="POST"><Stream url="wss://h/twilio/media/c1"><Parameter name="tenant_id" value="a&amp;b"/></Stream></Connect></Response>"#).unwrap();
        let Verb::Stream { url, action, params } = &v[0] else { panic!("{v:?}") };
        assert_eq!((url.as_str(), action.as_deref(), params["tenant_id"].as_str()), ("wss://h/twilio/media/c1", Some("https://h/after/c1"), "a&b"));
        let v = parse(r#"<Response><Dial><Number url="https://h/w/c1" method="POST">+1555</Number></Dial></Response>"#).unwrap();
        assert_eq!(v, vec![Verb::Dial { to: "+1555".into(), whisper: Some("https://h/w/c1".into()) }]);
        assert_eq!(parse("<Response><Say>Bye &amp; thanks</Say><Hangup/></Response>").unwrap(), vec![Verb::Say("Bye & thanks".into()), Verb::Hangup]);
        assert!(parse("{}").is_err());
    }
}
