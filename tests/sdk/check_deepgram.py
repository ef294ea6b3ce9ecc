"""The official `deepgram-sdk` (v7) against our live transcription simulator. The SDK makes
the connection and sends; every message received is validated strictly against the SDK's types."""
import json

from deepgram import DeepgramClient
from deepgram.environment import DeepgramClientEnvironment
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results, ListenV1SpeechStarted, ListenV1UtteranceEnd

from common import KEY, base_url, check, silence_pcm16, strict, tone_pcm16, ws_url

TYPES = {"Results": ListenV1Results, "SpeechStarted": ListenV1SpeechStarted, "UtteranceEnd": ListenV1UtteranceEnd, "Metadata": ListenV1Metadata}
env = DeepgramClientEnvironment(base=base_url(), production=ws_url(), agent=ws_url(), agent_rest=base_url())
client = DeepgramClient(api_key=KEY, environment=env)

seen = []
finals = []
with client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate="8000", channels="1", interim_results="true",
                              vad_events="true", utterance_end_ms="1000", endpointing="300", smart_format="true") as sock:
    audio = tone_pcm16(1000) + silence_pcm16(1200) + tone_pcm16(700)
    for i in range(0, len(audio), 320):
        sock.send_media(audio[i:i + 320])
    sock.send_keep_alive()
    sock.send_finalize()
    while True:
        raw = json.loads(sock._websocket.recv(timeout=5))
        kind = raw["type"]
        check(kind in TYPES, f"unknown message type {kind}")
        msg = strict(TYPES[kind], raw)
        seen.append(kind)
        if kind == "Results" and msg.is_final:
            finals.append((msg.channel.alternatives[0].transcript, bool(msg.from_finalize)))
            if msg.from_finalize:
                break
    sock.send_close_stream()
    tail = []
    try:
        while True:
            raw = json.loads(sock._websocket.recv(timeout=5))
            strict(TYPES[raw["type"]], raw)
            tail.append(raw["type"])
    except Exception as e:  # the server closes after Metadata
        check("close" in type(e).__name__.lower() or "ConnectionClosed" in repr(e), f"closed cleanly, got {e!r}")
check("SpeechStarted" in seen and "UtteranceEnd" in seen, f"vad and utterance events: {seen}")
check(seen.count("Results") > len(finals), "interim results came before the finals")
check(finals == [("hello", False), ("hello", True)], f"finals: {finals}")
check(tail[-1] == "Metadata", f"CloseStream ends with Metadata: {tail}")

bad = DeepgramClient(api_key="wrong", environment=env)
try:
    with bad.listen.v1.connect(model="nova-3") as s:
        s.send_media(b"\x00" * 320)
    raise AssertionError("a bad key must be refused at the handshake")
except Exception as e:
    check("401" in str(e), f"401 at handshake: {e!r}")
print("deepgram SDK: ok")
