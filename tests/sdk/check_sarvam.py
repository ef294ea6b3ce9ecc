"""The official `sarvamai` SDK against our Sarvam simulators: streaming TTS (config, text,
flush, completion event) and streaming STT (audio, flush, VAD events, transcript)."""
import base64

from sarvamai import SarvamAI
from sarvamai.environment import SarvamAIEnvironment

from common import KEY, base_url, check, silence_pcm16, tone_pcm16, ws_url

client = SarvamAI(api_subscription_key=KEY, environment=SarvamAIEnvironment(base=base_url(), creative=base_url(), production=ws_url()))

with client.text_to_speech_streaming.connect(model="bulbul:v2", send_completion_event="true") as ws:
    ws.configure(target_language_code="hi-IN", speaker="anushka", speech_sample_rate=8000, output_audio_codec="linear16")
    ws.convert("नमस्ते, मैं आपकी कैसे मदद कर सकती हूँ?")
    ws.flush()
    audio = b""
    while True:
        msg = ws.recv()
        if msg.type == "audio":
            audio += base64.b64decode(msg.data.audio)
        elif msg.type == "event":
            check(msg.data.event_type == "final", f"completion event: {msg}")
            break
        else:
            raise AssertionError(f"unexpected {msg}")
    check(len(audio) > 8000, f"audio: {len(audio)} bytes")

with client.speech_to_text_streaming.connect(language_code="hi-IN", model="saarika:v2.5", sample_rate="8000", vad_signals="true", flush_signal="true") as ws:
    pcm = tone_pcm16(900) + silence_pcm16(100)
    ws.transcribe(audio=base64.b64encode(pcm).decode(), encoding="audio/wav", sample_rate=8000)
    ws.flush()
    kinds, text = [], None
    while text is None:
        msg = ws.recv()
        kinds.append(msg.type)
        if msg.type == "data":
            text = msg.data.transcript
    check(kinds[0] == "events" and text == "नमस्ते", f"stt: {kinds} {text!r}")
print("sarvamai SDK: ok")
