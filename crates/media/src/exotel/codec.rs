//! Exotel's Voicebot dialect: snake_case JSON; 16-bit PCM at 8/16/24 kHz or µ-law 8 kHz as
//! `start.media_format` says; outbound audio in chunks of at least 3.2 KB, at most 100 KB and a
//! multiple of 320 bytes (other sizes make Exotel insert gaps). Marks wait behind the audio
//! they follow, so an echoed mark still means "heard up to here".

use base64::Engine as _;

use super::protocol::{self, Inbound, MarkInfo, OutMedia, Outbound};
use crate::carrier::{parse_digit, CallStart, Carrier, MediaCodec, ProtocolError, WireAudio, WireIn};
use crate::dsp::{g711, Resampler};
use crate::engine::CarrierOut;

/// Smallest outbound chunk Exotel plays without a gap.
pub const MIN_CHUNK_BYTES: usize = 3200;
/// Largest outbound chunk Exotel accepts.
pub const MAX_CHUNK_BYTES: usize = 100 * 1024;
/// Chunks are a whole number of these.
pub const CHUNK_UNIT_BYTES: usize = 320;
/// Largest decoded inbound payload (1 s of 24 kHz PCM16).
const MAX_PAYLOAD_BYTES: usize = 48_000;

/// Milliseconds of audio in the smallest chunk for a format (how far ahead playout must run).
pub fn chunk_ms(audio: WireAudio, rate: u32) -> u32 {
    let bytes_per_sec = rate as usize * if audio == WireAudio::Mulaw { 1 } else { 2 };
    (MIN_CHUNK_BYTES * 1000 / bytes_per_sec.max(1)) as u32
}

pub struct ExotelCodec {
    stream_sid: Option<String>,
    last_seq: u64,
    audio: WireAudio,
    rate: u32,
    up: Option<Resampler>,
    down: Option<Resampler>,
    /// Outbound wire bytes not yet sent, and marks that follow them (by byte position).
    pending: Vec<u8>,
    marks: Vec<(usize, String)>,
}

impl Default for ExotelCodec {
    fn default() -> Self {
        ExotelCodec { stream_sid: None, last_seq: 0, audio: WireAudio::Linear16, rate: 8000, up: None, down: None, pending: Vec::new(), marks: Vec::new() }
    }
}

impl ExotelCodec {
    fn check_header(&mut self, msg: &Inbound) -> Result<(), ProtocolError> {
        let Some((seq, sid)) = msg.header() else { return Ok(()) };
        match (&self.stream_sid, msg) {
            (None, Inbound::Start { .. }) => {}
            (Some(_), Inbound::Start { .. }) => return Err(ProtocolError::DuplicateStart),
            (None, _) => return Err(ProtocolError::BeforeStart { got: msg.name() }),
            (Some(expected), _) if !sid.is_empty() && sid != expected => {
                return Err(ProtocolError::WrongStream { expected: expected.clone(), got: sid.chars().take(64).collect() });
            }
            _ => {}
        }
        if let Some(seq) = seq {
            if seq <= self.last_seq {
                return Err(ProtocolError::OutOfOrder { last: self.last_seq, got: seq });
            }
            self.last_seq = seq;
        }
        Ok(())
    }

    fn decode_audio(&mut self, payload: &str) -> Result<Vec<i16>, ProtocolError> {
        if payload.len() > MAX_PAYLOAD_BYTES * 4 / 3 + 4 {
            return Err(ProtocolError::BadPayload(format!("{} base64 bytes is over the limit", payload.len())));
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(payload).map_err(|e| ProtocolError::BadPayload(e.to_string()))?;
        let pcm = match self.audio {
            WireAudio::Mulaw => g711::mulaw_decode_all(&bytes),
            WireAudio::Linear16 => {
                if bytes.len() % 2 != 0 {
                    return Err(ProtocolError::BadPayload(format!("{} bytes is not whole 16-bit samples", bytes.len())));
                }
                bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
            }
        };
        Ok(match &mut self.down {
            Some(r) => r.process_i16(&pcm),
            None => pcm,
        })
    }

    fn push_audio(&mut self, pcm: &[i16]) {
        let pcm = match &mut self.up {
            Some(r) => r.process_i16(pcm),
            None => pcm.to_vec(),
        };
        match self.audio {
            WireAudio::Mulaw => self.pending.extend(g711::mulaw_encode_all(&pcm)),
            WireAudio::Linear16 => self.pending.extend(pcm.iter().flat_map(|s| s.to_le_bytes())),
        }
    }

    /// Sends every full chunk; with `all`, also the tail, padded with silence to a legal size.
    fn drain(&mut self, all: bool, frames: &mut Vec<String>) {
        if all && !self.pending.is_empty() {
            let target = self.pending.len().max(MIN_CHUNK_BYTES).div_ceil(CHUNK_UNIT_BYTES) * CHUNK_UNIT_BYTES;
            let silence = if self.audio == WireAudio::Mulaw { g711::mulaw_encode(0) } else { 0 };
            self.pending.resize(target, silence);
        }
        while self.pending.len() >= MIN_CHUNK_BYTES {
            let mut n = (self.pending.len() / CHUNK_UNIT_BYTES * CHUNK_UNIT_BYTES).min(MAX_CHUNK_BYTES);
            if !all {
                // Steady state: send the minimum, keep latency low.
                n = MIN_CHUNK_BYTES;
            }
            let chunk: Vec<u8> = self.pending.drain(..n).collect();
            self.frame(Outbound::Media { stream_sid: self.sid(), media: OutMedia { payload: base64::engine::general_purpose::STANDARD.encode(&chunk) } }, frames);
            let due: Vec<String> = self.marks.iter().filter(|(at, _)| *at <= n).map(|(_, m)| m.clone()).collect();
            self.marks.retain(|(at, _)| *at > n);
            for (at, _) in &mut self.marks {
                *at -= n;
            }
            for name in due {
                self.frame(Outbound::Mark { stream_sid: self.sid(), mark: MarkInfo { name } }, frames);
            }
        }
        if self.pending.is_empty() {
            for (_, name) in std::mem::take(&mut self.marks) {
                self.frame(Outbound::Mark { stream_sid: self.sid(), mark: MarkInfo { name } }, frames);
            }
        }
    }

    fn sid(&self) -> String {
        self.stream_sid.clone().unwrap_or_default()
    }

    fn frame(&self, msg: Outbound, frames: &mut Vec<String>) {
        match serde_json::to_string(&msg) {
            Ok(t) => frames.push(t),
            Err(e) => tracing::error!(error = %e, "cannot encode outbound message"),
        }
    }
}

impl MediaCodec for ExotelCodec {
    fn carrier(&self) -> Carrier {
        Carrier::Exotel
    }

    fn decode(&mut self, text: &str) -> Result<WireIn, ProtocolError> {
        let msg = protocol::parse(text)?;
        self.check_header(&msg)?;
        Ok(match msg {
            Inbound::Connected {} if self.stream_sid.is_none() => WireIn::Connected,
            Inbound::Connected {} => return Err(ProtocolError::Malformed("`connected` after `start`".into())),
            Inbound::Start { start, stream_sid, .. } => {
                let (audio, rate) = protocol::media_format(start.media_format.as_ref())?;
                let sid = if start.stream_sid.is_empty() { stream_sid } else { start.stream_sid.clone() };
                if sid.is_empty() || start.call_sid.is_empty() {
                    return Err(ProtocolError::Malformed("`start` without stream_sid or call_sid".into()));
                }
                self.stream_sid = Some(sid.clone());
                self.audio = audio;
                self.rate = rate;
                if rate != 8000 {
                    self.down = Some(Resampler::new(rate, 8000));
                    self.up = Some(Resampler::new(8000, rate));
                }
                WireIn::Start(Box::new(CallStart {
                    carrier: Carrier::Exotel,
                    account_sid: start.account_sid,
                    call_sid: start.call_sid,
                    stream_sid: sid,
                    from: start.from,
                    to: start.to,
                    custom_parameters: start.custom_parameters,
                    audio,
                    sample_rate: rate,
                }))
            }
            Inbound::Media { media, .. } => WireIn::Audio(self.decode_audio(&media.payload)?),
            Inbound::Dtmf { dtmf, .. } => WireIn::Dtmf(parse_digit(dtmf.digit.trim_matches('"'))?),
            Inbound::Mark { mark, .. } => WireIn::Mark(mark.name),
            Inbound::Stop { .. } => WireIn::Stop,
        })
    }

    fn encode(&mut self, out: &CarrierOut, frames: &mut Vec<String>) {
        match out {
            CarrierOut::Audio(pcm) => {
                self.push_audio(pcm);
                self.drain(false, frames);
            }
            CarrierOut::Mark(name) => {
                if self.pending.is_empty() {
                    self.frame(Outbound::Mark { stream_sid: self.sid(), mark: MarkInfo { name: name.clone() } }, frames);
                } else {
                    self.marks.push((self.pending.len(), name.clone()));
                }
            }
            CarrierOut::Flush | CarrierOut::Close(_) => self.drain(true, frames),
            CarrierOut::Clear => {
                // Held audio and marks were never sent: the caller did not hear them.
                self.pending.clear();
                self.marks.clear();
                self.frame(Outbound::Clear { stream_sid: self.sid() }, frames);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(encoding: &str, rate: u32) -> String {
        format!(r#"{{"event":"start","sequence_number":"1","stream_sid":"S1","start":{{"stream_sid":"S1","call_sid":"C1","account_sid":"A1","from":"+9198","to":"+9180","custom_parameters":{{}},"media_format":{{"encoding":"{encoding}","sample_rate":"{rate}","bit_rate":"16"}}}}}}"#)
    }

    fn payloads(frames: &[String]) -> Vec<(String, usize)> {
        frames
            .iter()
            .map(|f| {
                let v: serde_json::Value = serde_json::from_str(f).unwrap();
                let n = v["media"]["payload"].as_str().map_or(0, |p| base64::engine::general_purpose::STANDARD.decode(p).unwrap().len());
                (v["event"].as_str().unwrap().to_string(), n)
            })
            .collect()
    }

    #[test]
    fn outbound_chunks_are_legal_sizes_and_marks_follow_their_audio() {
        let mut c = ExotelCodec::default();
        c.decode(&start("audio/x-raw", 8000)).unwrap();
        let mut frames = Vec::new();
        for i in 0..23 {
            c.encode(&CarrierOut::Audio(vec![100; 160]), &mut frames);
            if i == 4 {
                c.encode(&CarrierOut::Mark("m1".into()), &mut frames);
            }
        }
        c.encode(&CarrierOut::Flush, &mut frames);
        c.encode(&CarrierOut::Mark("end".into()), &mut frames);
        let p = payloads(&frames);
        for (ev, n) in &p {
            if ev == "media" {
                assert!(*n >= MIN_CHUNK_BYTES && *n <= MAX_CHUNK_BYTES && n % CHUNK_UNIT_BYTES == 0, "{n}");
            }
        }
        // 23 frames × 320 bytes = 7360 bytes → 3200 + 3200 + tail padded to 3200.
        assert_eq!(p.iter().filter(|(e, _)| e == "media").count(), 3);
        let m1 = p.iter().position(|(e, _)| e == "mark").unwrap();
        assert_eq!(m1, 1, "the mark after 5 frames goes out right after the first chunk: {p:?}");
        assert_eq!(p.last().unwrap().0, "mark");
    }

    #[test]
    fn clear_drops_held_audio_and_marks() {
        let mut c = ExotelCodec::default();
        c.decode(&start("audio/x-raw", 8000)).unwrap();
        let mut frames = Vec::new();
        c.encode(&CarrierOut::Audio(vec![1; 160]), &mut frames);
        c.encode(&CarrierOut::Mark("m".into()), &mut frames);
        c.encode(&CarrierOut::Clear, &mut frames);
        c.encode(&CarrierOut::Flush, &mut frames);
        assert_eq!(payloads(&frames), vec![("clear".to_string(), 0)]);
    }

    #[test]
    fn pcm_and_mulaw_and_16k_decode_to_8k_pcm() {
        let mut c = ExotelCodec::default();
        c.decode(&start("audio/x-raw", 8000)).unwrap();
        let pcm: Vec<u8> = [1000i16, -1000].iter().flat_map(|s| s.to_le_bytes()).collect();
        let msg = format!(r#"{{"event":"media","sequence_number":"2","stream_sid":"S1","media":{{"chunk":"1","timestamp":"0","payload":"{}"}}}}"#, base64::engine::general_purpose::STANDARD.encode(&pcm));
        assert_eq!(c.decode(&msg).unwrap(), WireIn::Audio(vec![1000, -1000]));
        let odd = format!(r#"{{"event":"media","sequence_number":"3","stream_sid":"S1","media":{{"payload":"{}"}}}}"#, base64::engine::general_purpose::STANDARD.encode([1u8, 2, 3]));
        assert!(matches!(c.decode(&odd), Err(ProtocolError::BadPayload(_))));

        let mut u = ExotelCodec::default();
        u.decode(&start("audio/x-mulaw", 8000)).unwrap();
        let mut frames = Vec::new();
        u.encode(&CarrierOut::Audio(vec![0; 4000]), &mut frames);
        assert_eq!(payloads(&frames), vec![("media".to_string(), 3200)]);

        let mut w = ExotelCodec::default();
        w.decode(&start("audio/x-raw", 16000)).unwrap();
        let tone: Vec<u8> = (0..1600).flat_map(|i| (((i as f32 * 0.2).sin() * 8000.0) as i16).to_le_bytes()).collect();
        let msg = format!(r#"{{"event":"media","sequence_number":"2","stream_sid":"S1","media":{{"payload":"{}"}}}}"#, base64::engine::general_purpose::STANDARD.encode(&tone));
        let WireIn::Audio(down) = w.decode(&msg).unwrap() else { panic!() };
        assert!((780..=820).contains(&down.len()), "{}", down.len());
        assert_eq!(chunk_ms(WireAudio::Linear16, 8000), 200);
        assert_eq!(chunk_ms(WireAudio::Mulaw, 8000), 400);
    }

    #[test]
    fn order_and_identity_are_enforced() {
        let mut c = ExotelCodec::default();
        assert!(matches!(c.decode(r#"{"event":"media","sequence_number":"2","stream_sid":"S1","media":{"payload":""}}"#), Err(ProtocolError::BeforeStart { .. })));
        c.decode(&start("audio/x-raw", 8000)).unwrap();
        assert!(matches!(c.decode(&start("audio/x-raw", 8000)), Err(ProtocolError::DuplicateStart)));
        assert!(matches!(c.decode(r#"{"event":"media","sequence_number":"5","stream_sid":"S9","media":{"payload":""}}"#), Err(ProtocolError::WrongStream { .. })));
        assert!(matches!(c.decode(r#"{"event":"media","sequence_number":"1","stream_sid":"S1","media":{"payload":""}}"#), Err(ProtocolError::OutOfOrder { .. })));
        assert!(matches!(c.decode(r#"{"event":"dtmf","sequence_number":"6","stream_sid":"S1","dtmf":{"digit":"55"}}"#), Err(ProtocolError::BadDigit(_))));
        assert_eq!(c.decode(r#"{"event":"dtmf","sequence_number":"7","stream_sid":"S1","dtmf":{"digit":"5"}}"#).unwrap(), WireIn::Dtmf('5'));
        assert!(matches!(c.decode(r#"{"event":"media","sequence_number":"8","stream_sid":"S1","media":{"payload":"%%%"}}"#), Err(ProtocolError::BadPayload(_))));
    }
}
