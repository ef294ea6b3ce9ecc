"""The official `anthropic` SDK against our Messages API simulator."""
import anthropic

from common import KEY, base_url, check

client = anthropic.Anthropic(api_key=KEY, base_url=base_url(), max_retries=0)

# Streaming text with the SDK's own event accumulation.
with client.messages.stream(model="claude-haiku-4-5", max_tokens=200,
                            system=[{"type": "text", "text": "You are a receptionist.", "cache_control": {"type": "ephemeral"}}],
                            messages=[{"role": "user", "content": "When do you open?"}]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
check(text.startswith("I heard: When do you open?"), f"streamed text: {text!r}")
check(final.stop_reason == "end_turn" and final.content[0].text == text, f"final message: {final}")
check(final.usage.cache_creation_input_tokens > 0, f"cache write counted: {final.usage}")

# The same prefix again: a cache read.
again = client.messages.create(model="claude-haiku-4-5", max_tokens=50,
                               system=[{"type": "text", "text": "You are a receptionist.", "cache_control": {"type": "ephemeral"}}],
                               messages=[{"role": "user", "content": "Thanks"}])
check(again.usage.cache_read_input_tokens > 0, f"cache read: {again.usage}")

# Parallel tool calls: the SDK assembles input_json_delta per block index.
tools = [{"name": "book_appointment", "description": "Book", "input_schema": {"type": "object", "properties": {"time": {"type": "string"}}, "required": ["time"]}},
         {"name": "end_call", "description": "End", "input_schema": {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}}]
with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, tools=tools,
                            messages=[{"role": "user", "content": "Book an appointment and then end the call"}]) as stream:
    msg = stream.get_final_message()
uses = [b for b in msg.content if b.type == "tool_use"]
check(msg.stop_reason == "tool_use" and [u.name for u in uses] == ["book_appointment", "end_call"], f"tool calls: {msg.content}")
check(uses[0].input == {"time": "unknown"} and "reason" in uses[1].input, f"tool inputs: {[u.input for u in uses]}")

# Tool results go back; the simulator validates that every tool_use is answered.
follow = client.messages.create(model="claude-haiku-4-5", max_tokens=200, tools=tools, messages=[
    {"role": "user", "content": "Book an appointment and then end the call"},
    {"role": "assistant", "content": msg.content},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "ok"} for u in uses]}])
check(follow.content[0].text == "ok ok", f"reply to tool results: {follow.content}")
try:
    client.messages.create(model="claude-haiku-4-5", max_tokens=200, tools=tools, messages=[
        {"role": "user", "content": "Book an appointment"}, {"role": "assistant", "content": msg.content}, {"role": "user", "content": "and?"}])
    raise AssertionError("an unanswered tool_use must be a 400")
except anthropic.BadRequestError as e:
    check(e.body["error"]["type"] == "invalid_request_error", f"error body: {e.body}")

# Errors map to the SDK's exception types.
bad = anthropic.Anthropic(api_key="wrong", base_url=base_url(), max_retries=0)
try:
    bad.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("a bad key must fail")
except anthropic.AuthenticationError:
    pass

import httpx
httpx.post(base_url() + "/__sim/faults", json={"fault": {"kind": "overloaded"}, "times": 1})
try:
    client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("529 must raise")
except anthropic.APIStatusError as e:
    check(e.status_code == 529, f"status {e.status_code}")

# An error event after a 200 surfaces from the stream.
httpx.post(base_url() + "/__sim/faults", json={"fault": {"kind": "error_after_ok"}, "times": 1})
try:
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "one two three four five"}]) as s:
        "".join(s.text_stream)
    raise AssertionError("the error event must raise")
except anthropic.APIStatusError as e:
    check("Overloaded" in str(e), str(e))

# With retries on, a 429 honouring retry-after-ms succeeds.
httpx.post(base_url() + "/__sim/faults", json={"fault": {"kind": "rate_limited", "retry_after_ms": 200}, "times": 1})
ok = anthropic.Anthropic(api_key=KEY, base_url=base_url(), max_retries=2).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
check(ok.content[0].text.startswith("I heard"), f"after retry: {ok.content}")
print("anthropic SDK: ok")
