//! Twilio's Media Streams dialect: camelCase JSON, µ-law 8 kHz; 20 ms frames in, any length out.

use super::protocol::{self, Inbound, MarkInfo, OutMedia, Outbound, StreamValidator};
use crate::carrier::{parse_digit, CallStart, Carrier, MediaCodec, ProtocolError, WireAudio, WireIn};
use crate::dsp::g711;
use crate::engine::CarrierOut;

#[derive(Default)]
pub struct TwilioCodec {
    validator: StreamValidator,
    stream_sid: String,
}

impl MediaCodec for TwilioCodec {
    fn carrier(&self) -> Carrier {
        Carrier::Twilio
    }

    fn decode(&mut self, text: &str) -> Result<WireIn, ProtocolError> {
        let msg = protocol::parse(text)?;
        self.validator.check(&msg)?;
        Ok(match msg {
            Inbound::Connected { .. } => WireIn::Connected,
            Inbound::Start { start, .. } => {
                self.stream_sid = start.stream_sid.clone();
                let p = &start.custom_parameters;
                let get = |k: &str| p.get(k).cloned().unwrap_or_default();
                WireIn::Start(Box::new(CallStart {
                    carrier: Carrier::Twilio,
                    account_sid: start.account_sid.clone(),
                    call_sid: start.call_sid.clone(),
                    stream_sid: start.stream_sid.clone(),
                    from: get("from"),
                    to: get("to"),
                    custom_parameters: start.custom_parameters,
                    audio: WireAudio::Mulaw,
                    sample_rate: 8000,
                }))
            }
            // Only the caller's track is ours to hear.
            Inbound::Media { media, .. } if !media.track.is_empty() && media.track != "inbound" => WireIn::Audio(Vec::new()),
            Inbound::Media { media, .. } => WireIn::Audio(g711::mulaw_decode_all(&protocol::decode_payload(&media.payload)?)),
            Inbound::Mark { mark, .. } => WireIn::Mark(mark.name),
            Inbound::Dtmf { dtmf, .. } => WireIn::Dtmf(parse_digit(&dtmf.digit)?),
            Inbound::Stop { .. } => WireIn::Stop,
        })
    }

    fn encode(&mut self, out: &CarrierOut, frames: &mut Vec<String>) {
        let stream_sid = self.stream_sid.clone();
        let msg = match out {
            CarrierOut::Audio(pcm) => Outbound::Media { stream_sid, media: OutMedia { payload: protocol::encode_payload(&g711::mulaw_encode_all(pcm)) } },
            CarrierOut::Mark(name) => Outbound::Mark { stream_sid, mark: MarkInfo { name: name.clone() } },
            CarrierOut::Clear => Outbound::Clear { stream_sid },
            CarrierOut::Flush | CarrierOut::Close(_) => return,
        };
        match serde_json::to_string(&msg) {
            Ok(t) => frames.push(t),
            Err(e) => tracing::error!(error = %e, "cannot encode outbound message"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"customParameters":{"from":"+1555","to":"+1666"},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;

    #[test]
    fn decodes_to_neutral_events_and_encodes_twilio_frames() {
        let mut c = TwilioCodec::default();
        assert_eq!(c.decode(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(), WireIn::Connected);
        let WireIn::Start(s) = c.decode(START).unwrap() else { panic!() };
        assert_eq!((s.from.as_str(), s.to.as_str(), s.audio), ("+1555", "+1666", WireAudio::Mulaw));
        let WireIn::Audio(pcm) = c.decode(r#"{"event":"media","sequenceNumber":"2","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"//8="}}"#).unwrap() else { panic!() };
        assert_eq!(pcm.len(), 2);
        assert_eq!(c.decode(r##"{"event":"dtmf","sequenceNumber":"3","streamSid":"MZ1","dtmf":{"track":"inbound_track","digit":"#"}}"##).unwrap(), WireIn::Dtmf('#'));
        let mut frames = Vec::new();
        c.encode(&CarrierOut::Audio(vec![0; 160]), &mut frames);
        c.encode(&CarrierOut::Mark("m1".into()), &mut frames);
        c.encode(&CarrierOut::Clear, &mut frames);
        assert_eq!(frames.len(), 3);
        let v: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!((v["event"].as_str(), v["streamSid"].as_str()), (Some("media"), Some("MZ1")));
        assert_eq!(protocol::decode_payload(v["media"]["payload"].as_str().unwrap()).unwrap().len(), 160);
        assert!(frames[2].contains(r#""event":"clear""#));
    }
}
