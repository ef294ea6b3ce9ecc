"""The official `cartesia` SDK against our TTS WebSocket simulator: a context with continuations,
timestamps, a flush, and a cancelled second context; every response validated strictly."""
import base64

from cartesia import Cartesia
from cartesia.types import WebsocketResponse

from common import KEY, base_url, check, strict, ws_url

client = Cartesia(api_key=KEY, base_url=base_url(), websocket_base_url=ws_url())
fmt = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
voice = {"mode": "id", "id": "a0e99841-438c-4a64-b679-ae501e7d6091"}
with client.tts.websocket_connect() as conn:
    ctx = conn.context(model_id="sonic-3", voice=voice, output_format=fmt, language="en", add_timestamps=True)
    ctx.push("We open at eight. ")
    ctx.push("On Saturdays at nine.")
    ctx.no_more_inputs()
    audio = b""
    kinds = []
    words = []
    for ev in ctx.receive():
        kinds.append(ev.type)
        if ev.type == "chunk":
            audio += base64.b64decode(ev.data)
        if ev.type == "timestamps":
            words += ev.word_timestamps.words
    check(kinds[-1] == "done", f"ends with done: {kinds}")
    check(len(audio) > 8000, f"audio follows the text: {len(audio)} bytes")
    check(words[:3] == ["We", "open", "at"], f"timestamps: {words}")
    # a second context, cancelled at its first chunk
    ctx2 = conn.context(model_id="sonic-3", voice=voice, output_format=fmt, language="en")
    ctx2.push("A long sentence that will be cut off by the caller barging in right away.")
    for ev in ctx2.receive():
        check(ev.type in ("chunk", "timestamps"), f"second context: {ev.type}")
        ctx2.cancel()
        break
    # raw responses, validated strictly by the SDK's own types
    conn.send({"context_id": "strict", "model_id": "sonic-3", "transcript": "Hi.", "voice": voice, "output_format": fmt, "continue": False})
    while True:
        raw = conn.recv_bytes(timeout=5)
        ev = strict(WebsocketResponse, __import__("json").loads(raw))
        if getattr(ev, "context_id", None) == "strict" and ev.type == "done":
            break
    # a request missing required fields gets an error response
    conn.send({"context_id": "bad", "transcript": "x", "continue": False})
    ev = conn.parse_event(conn.recv_bytes(timeout=5))
    check(ev.type == "error", f"missing fields → error: {ev}")
print("cartesia SDK: ok")
