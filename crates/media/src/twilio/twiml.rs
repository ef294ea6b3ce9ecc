//! TwiML responses.

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// `<Connect><Stream>`: a bidirectional media stream to `ws_url` (no query string: Twilio
/// rejects one), with `<Parameter>`s that come back in `start.customParameters`. `action` is
/// requested when the stream ends (that is where a transfer's `<Dial>` is returned).
pub fn connect_stream(ws_url: &str, action: Option<&str>, params: &[(&str, &str)]) -> String {
    let action = action.map(|a| format!(r#" action="{}" method="POST""#, esc(a))).unwrap_or_default();
    let params: String = params.iter().map(|(k, v)| format!(r#"<Parameter name="{}" value="{}"/>"#, esc(k), esc(v))).collect();
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect{action}><Stream url="{}">{params}</Stream></Connect></Response>"#, esc(ws_url))
}

/// Transfers the caller to `to` (an E.164 number or a SIP URI).
pub fn dial(to: &str) -> String {
    let target = if to.starts_with("sip:") { format!("<Sip>{}</Sip>", esc(to)) } else { format!("<Number>{}</Number>", esc(to)) };
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{target}</Dial></Response>"#)
}

/// Warm transfer: dial `to`; the person who answers first hears the TwiML at `whisper_url`
/// (the brief), then is bridged to the caller.
pub fn dial_with_whisper(to: &str, whisper_url: &str) -> String {
    let target = if to.starts_with("sip:") {
        format!(r#"<Sip url="{}" method="POST">{}</Sip>"#, esc(whisper_url), esc(to))
    } else {
        format!(r#"<Number url="{}" method="POST">{}</Number>"#, esc(whisper_url), esc(to))
    };
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{target}</Dial></Response>"#)
}

/// Says `text` and continues (the whisper to a transfer target).
pub fn say(text: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>{}</Say></Response>"#, esc(text))
}

pub fn hangup() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#.to_string()
}

pub fn say_and_hangup(text: &str) -> String {
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Say>{}</Say><Hangup/></Response>"#, esc(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_twiml_escapes_and_has_no_query_string() {
        let x = connect_stream("wss://h.example/twilio/media/c1", Some("https://h.example/twilio/after/c1"), &[("tenant_id", "a&b"), ("caller", "+1555")]);
        assert!(x.contains(r#"<Stream url="wss://h.example/twilio/media/c1">"#));
        assert!(x.contains(r#"<Parameter name="tenant_id" value="a&amp;b"/>"#));
        assert!(x.contains(r#"<Connect action="https://h.example/twilio/after/c1" method="POST">"#));
        assert!(dial("+15551234").contains("<Dial><Number>+15551234</Number></Dial>"));
        assert!(dial("sip:desk@pbx.example").contains("<Sip>"));
        let w = dial_with_whisper("+1555", "https://h/twilio/whisper/c1");
        assert!(w.contains(r#"<Number url="https://h/twilio/whisper/c1" method="POST">+1555</Number>"#), "{w}");
        assert!(say("a < b").contains("<Say>a &lt; b</Say>"));
    }
}
