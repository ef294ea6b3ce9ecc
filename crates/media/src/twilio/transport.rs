//! The Media Streams WebSocket: Twilio's JSON frames in and out, µ-law ↔ PCM16, and the
//! protocol rules. A bad stream is ended with a logged reason; it never touches other calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::protocol::{self, Inbound, MarkInfo, OutMedia, Outbound, ProtocolError, StartInfo, StreamValidator};
use crate::dsp::g711;
use crate::engine::{CallEnd, CarrierIn, CarrierIo, CarrierOut};

/// Twilio must send `start` promptly after connecting.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What the control plane does with a started stream.
#[async_trait]
pub trait CallHandler: Send + Sync {
    /// Runs the call to its end over `io`.
    async fn run(&self, call_id: String, start: StartInfo, io: CarrierIo) -> CallEnd;
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("no `start` within {0:?}")]
    StartTimeout(Duration),
    #[error("stream closed before `start`")]
    ClosedBeforeStart,
}

/// Serves one Media Streams WebSocket to its end.
pub async fn serve(socket: WebSocket, call_id: String, handler: Arc<dyn CallHandler>) -> Result<CallEnd, StreamError> {
    let (mut sink, mut stream) = socket.split();
    let mut validator = StreamValidator::default();
    let start = match tokio::time::timeout(START_TIMEOUT, wait_for_start(&mut stream, &mut validator)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let _ = sink.send(close(1008, &e.to_string())).await;
            return Err(e);
        }
        Err(_) => {
            let _ = sink.send(close(1008, "no start")).await;
            return Err(StreamError::StartTimeout(START_TIMEOUT));
        }
    };
    let stream_sid = start.stream_sid.clone();
    let (in_tx, in_rx) = mpsc::channel(crate::engine::AUDIO_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<CarrierOut>(crate::engine::AUDIO_QUEUE);
    let call = tokio::spawn({
        let handler = handler.clone();
        let call_id = call_id.clone();
        async move { handler.run(call_id, start, CarrierIo { inbound: in_rx, outbound: out_tx }).await }
    });

    // Writer: engine → Twilio.
    let writer = tokio::spawn(async move {
        while let Some(msg) = out_rx.recv().await {
            let out = match msg {
                CarrierOut::Audio(pcm) => Outbound::Media { stream_sid: stream_sid.clone(), media: OutMedia { payload: protocol::encode_payload(&g711::mulaw_encode_all(&pcm)) } },
                CarrierOut::Mark(name) => Outbound::Mark { stream_sid: stream_sid.clone(), mark: MarkInfo { name } },
                CarrierOut::Clear => Outbound::Clear { stream_sid: stream_sid.clone() },
                CarrierOut::Close(_) => {
                    let _ = sink.send(close(1000, "call ended")).await;
                    return;
                }
            };
            let text = match serde_json::to_string(&out) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode outbound message");
                    continue;
                }
            };
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = sink.send(close(1000, "call ended")).await;
    });

    // Reader: Twilio → engine.
    let reason = read_loop(&mut stream, &mut validator, &in_tx).await;
    match &reason {
        Ok(why) => tracing::info!(call_id, why, "media stream ended"),
        Err(e) => tracing::warn!(call_id, error = %e, "media stream ended: protocol violation"),
    }
    let why = match &reason {
        Ok(w) => w.to_string(),
        Err(e) => format!("protocol error: {e}"),
    };
    let _ = in_tx.send(CarrierIn::Hangup(why)).await;
    drop(in_tx);
    let end = call.await.unwrap_or_else(|e| CallEnd::Failed { error: format!("call task: {e}") });
    writer.abort();
    match reason {
        Ok(_) => Ok(end),
        Err(e) => Err(e.into()),
    }
}

fn close(code: u16, reason: &str) -> Message {
    let reason: String = reason.chars().take(120).collect();
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

enum Frame {
    Text(String),
    /// The stream ended, for this reason.
    Ended(&'static str),
}

/// The next text frame (pings skipped); binary frames break the protocol.
async fn next_text<S>(stream: &mut S) -> Result<Frame, ProtocolError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        return match stream.next().await {
            Some(Ok(Message::Text(t))) => Ok(Frame::Text(t.to_string())),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => Err(ProtocolError::Malformed("binary frame".into())),
            Some(Ok(Message::Close(_))) => Ok(Frame::Ended("closed by carrier")),
            Some(Err(_)) | None => Ok(Frame::Ended("connection lost")),
        };
    }
}

async fn wait_for_start<S>(stream: &mut S, validator: &mut StreamValidator) -> Result<StartInfo, StreamError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        let Frame::Text(text) = next_text(stream).await? else { return Err(StreamError::ClosedBeforeStart) };
        let msg = protocol::parse(&text)?;
        validator.check(&msg)?;
        match msg {
            Inbound::Connected { .. } => continue,
            Inbound::Start { start, .. } => return Ok(start),
            other => return Err(ProtocolError::BeforeStart { got: other.name() }.into()),
        }
    }
}

/// Reads until `stop`, close or a protocol violation. Ok carries the ordinary reason.
async fn read_loop<S>(stream: &mut S, validator: &mut StreamValidator, tx: &mpsc::Sender<CarrierIn>) -> Result<&'static str, ProtocolError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        let text = match next_text(stream).await? {
            Frame::Text(t) => t,
            Frame::Ended(why) => return Ok(why),
        };
        let msg = protocol::parse(&text)?;
        validator.check(&msg)?;
        let ev = match msg {
            Inbound::Media { media, .. } => {
                if !media.track.is_empty() && media.track != "inbound" {
                    continue;
                }
                CarrierIn::Audio(g711::mulaw_decode_all(&protocol::decode_payload(&media.payload)?))
            }
            Inbound::Mark { mark, .. } => CarrierIn::Mark(mark.name),
            Inbound::Dtmf { dtmf, .. } => CarrierIn::Dtmf(dtmf.digit.chars().next().unwrap_or('?')),
            Inbound::Stop { .. } => return Ok("stop"),
            Inbound::Connected { .. } => return Err(ProtocolError::Malformed("`connected` after `start`".into())),
            Inbound::Start { .. } => return Err(ProtocolError::DuplicateStart),
        };
        if tx.send(ev).await.is_err() {
            return Ok("call ended");
        }
    }
}
