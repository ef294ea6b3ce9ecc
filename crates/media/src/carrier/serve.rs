//! One media WebSocket, any carrier: wait for `start`, hand the call to the control plane, pump
//! frames both ways. A bad stream is ended with a logged reason; it never touches other calls.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CallHandler, CallStart, MediaCodec, ProtocolError, WireIn};
use crate::engine::{CallEnd, CarrierIn, CarrierIo, CarrierOut};

/// The carrier must send `start` promptly after connecting.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// More messages than this in one second is a flood (Twilio sends ~50 a second, Exotel ~10).
const MAX_PER_SECOND: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("no `start` within {0:?}")]
    StartTimeout(Duration),
    #[error("stream closed before `start`")]
    ClosedBeforeStart,
}

/// Serves one media WebSocket to its end with `codec` as the wire dialect.
pub async fn serve<C: MediaCodec>(socket: WebSocket, call_id: String, mut codec: C, handler: Arc<dyn CallHandler>) -> Result<CallEnd, StreamError> {
    let (mut sink, mut stream) = socket.split();
    let mut flood = FloodGuard::default();
    let start = match tokio::time::timeout(START_TIMEOUT, wait_for_start(&mut stream, &mut codec, &mut flood)).await {
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
    let (in_tx, in_rx) = mpsc::channel(crate::engine::AUDIO_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<CarrierOut>(crate::engine::AUDIO_QUEUE);
    let call = tokio::spawn({
        let handler = handler.clone();
        let call_id = call_id.clone();
        async move { handler.run(call_id, start, CarrierIo { inbound: in_rx, outbound: out_tx }).await }
    });

    // The codec is shared: the reader decodes, the writer encodes (chunk state lives there).
    let codec = Arc::new(parking_lot::Mutex::new(codec));
    let writer = tokio::spawn({
        let codec = codec.clone();
        async move {
            let mut frames = Vec::new();
            // What the engine queued together (a frame and its mark, a clear and what follows)
            // goes out in one socket write.
            'call: while let Some(first) = out_rx.recv().await {
                let mut next = Some(first);
                let mut closing = false;
                while let Some(msg) = next.take() {
                    closing = matches!(msg, CarrierOut::Close(_));
                    codec.lock().encode(&msg, &mut frames);
                    for text in frames.drain(..) {
                        if sink.feed(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    if !closing {
                        next = out_rx.try_recv().ok();
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
                if closing {
                    break 'call;
                }
            }
            let _ = sink.send(close(1000, "call ended")).await;
        }
    });

    let reason = read_loop(&mut stream, &codec, &mut flood, &in_tx).await;
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
    // Let the writer send what the engine queued last (its close frame), then stop it.
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_millis(200), &mut writer).await.is_err() {
        writer.abort();
    }
    match reason {
        Ok(_) => Ok(end),
        Err(e) => Err(e.into()),
    }
}

fn close(code: u16, reason: &str) -> Message {
    let reason: String = reason.chars().take(120).collect();
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}

#[derive(Default)]
struct FloodGuard {
    window: Option<Instant>,
    count: u32,
}

impl FloodGuard {
    fn tick(&mut self) -> Result<(), ProtocolError> {
        let now = Instant::now();
        match self.window {
            Some(w) if now.duration_since(w) < Duration::from_secs(1) => {
                self.count += 1;
                if self.count > MAX_PER_SECOND {
                    return Err(ProtocolError::Flood(MAX_PER_SECOND));
                }
            }
            _ => {
                self.window = Some(now);
                self.count = 1;
            }
        }
        Ok(())
    }
}

enum Frame {
    Text(String),
    /// The stream ended, for this reason.
    Ended(&'static str),
}

/// The next text frame (pings skipped); binary frames break both carriers' protocols.
async fn next_text<S>(stream: &mut S, flood: &mut FloodGuard) -> Result<Frame, ProtocolError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        let msg = stream.next().await;
        if matches!(msg, Some(Ok(_))) {
            flood.tick()?;
        }
        return match msg {
            Some(Ok(Message::Text(t))) => Ok(Frame::Text(t.to_string())),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => Err(ProtocolError::Malformed("binary frame".into())),
            Some(Ok(Message::Close(_))) => Ok(Frame::Ended("closed by carrier")),
            Some(Err(_)) | None => Ok(Frame::Ended("connection lost")),
        };
    }
}

async fn wait_for_start<S, C: MediaCodec>(stream: &mut S, codec: &mut C, flood: &mut FloodGuard) -> Result<CallStart, StreamError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        let Frame::Text(text) = next_text(stream, flood).await? else { return Err(StreamError::ClosedBeforeStart) };
        match codec.decode(&text)? {
            WireIn::Connected => continue,
            WireIn::Start(start) => return Ok(*start),
            other => return Err(ProtocolError::BeforeStart { got: other.name() }.into()),
        }
    }
}

/// Reads until `stop`, close or a protocol violation. Ok carries the ordinary reason.
async fn read_loop<S, C: MediaCodec>(stream: &mut S, codec: &parking_lot::Mutex<C>, flood: &mut FloodGuard, tx: &mpsc::Sender<CarrierIn>) -> Result<&'static str, ProtocolError>
where
    S: futures::Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    loop {
        let text = match next_text(stream, flood).await? {
            Frame::Text(t) => t,
            Frame::Ended(why) => return Ok(why),
        };
        let ev = match codec.lock().decode(&text)? {
            WireIn::Audio(pcm) if pcm.is_empty() => continue,
            WireIn::Audio(pcm) => CarrierIn::Audio(pcm),
            WireIn::Mark(name) => CarrierIn::Mark(name),
            WireIn::Dtmf(d) => CarrierIn::Dtmf(d),
            WireIn::Stop => return Ok("stop"),
            WireIn::Connected => return Err(ProtocolError::Malformed("`connected` after `start`".into())),
            WireIn::Start(_) => return Err(ProtocolError::DuplicateStart),
        };
        if tx.send(ev).await.is_err() {
            return Ok("call ended");
        }
    }
}
