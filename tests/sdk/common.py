"""Shared helpers for the SDK checks: each script gets the simulator's base URL as argv[1]."""
import math
import sys

KEY = "sim-key"


def base_url() -> str:
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} http://HOST:PORT")
    return sys.argv[1].rstrip("/")


def ws_url() -> str:
    return base_url().replace("http://", "ws://", 1)


def tone_pcm16(ms: int, rate: int = 8000) -> bytes:
    return b"".join(int(8000 * math.sin(2 * math.pi * 180 * i / rate)).to_bytes(2, "little", signed=True) for i in range(ms * rate // 1000))


def silence_pcm16(ms: int, rate: int = 8000) -> bytes:
    return b"\x00\x00" * (ms * rate // 1000)


def strict(type_, data):
    """Validates `data` against one of the SDK's pydantic types (not the SDK's lenient parse)."""
    import pydantic
    return pydantic.TypeAdapter(type_).validate_python(data)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
