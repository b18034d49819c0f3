"""The benchmarks' fake OpenAI-compatible server, run in a process of its own.

It must never be the bottleneck of what it measures, so it is a bare asyncio
protocol speaking just enough HTTP/1.1 (keep-alive, Content-Length bodies)
and Chat Completions (non-streaming, tool calls, usage): tens of
microseconds of CPU per request, where a full web framework takes hundreds.
The faithful, full-protocol fakes used by the tests are in
`retinue.testing.fake_openai` and `retinue.testing.fake_anthropic`.

Policies decide each reply from the request alone, so any number of
concurrent conversations can share the server:
- steps: call `lookup` until N tool results are in the conversation, then answer.
- delegation: a request offering `ask_*` tools (the lead) first calls every
  one of them in one turn, then answers; any other request (a specialist)
  does N `lookup` steps, then answers.

Prints its port on the first line of stdout. `--report-cpu` makes it print
its own CPU seconds on stderr when it stops, to check it was not saturated.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import signal
import sys
import time
from typing import Any

_ids = itertools.count(1)


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": f"call_{next(_ids)}", "type": "function", "function": {"name": name, "arguments": arguments}}


def steps_reply(body: dict[str, Any], steps: int) -> dict[str, Any]:
    done = sum(1 for message in body["messages"] if message.get("role") == "tool")
    if done >= steps:
        return {"role": "assistant", "content": "Done."}
    return {"role": "assistant", "content": None, "tool_calls": [tool_call("lookup", '{"key": "k"}')]}


def delegation_reply(body: dict[str, Any], steps: int) -> dict[str, Any]:
    delegates = [t["function"]["name"] for t in body.get("tools", ()) if t["function"]["name"].startswith("ask_")]
    if not delegates:
        return steps_reply(body, steps)
    if any(message.get("role") == "tool" for message in body["messages"]):
        return {"role": "assistant", "content": "Combined."}
    return {"role": "assistant", "content": None, "tool_calls": [tool_call(n, '{"question": "?"}') for n in delegates]}


class ChatCompletionsProtocol(asyncio.Protocol):
    def __init__(self, reply: Any, steps: int, latency: float) -> None:
        self.reply, self.steps, self.latency = reply, steps, latency
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            payload = self.respond(json.loads(body))
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, self.send, payload)
            else:
                self.send(payload)

    def respond(self, body: dict[str, Any]) -> bytes:
        message = self.reply(body, self.steps)
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4 + 10
        completion = {
            "id": f"chatcmpl-{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if "tool_calls" in message else "stop"}
            ],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 12, "total_tokens": prompt_tokens + 12},
        }
        return json.dumps(completion).encode()

    def send(self, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        self.transport.write(head.encode() + payload)


async def serve(policy: str, steps: int, latency_ms: float, report_cpu: bool) -> None:
    reply = steps_reply if policy == "steps" else delegation_reply
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ChatCompletionsProtocol(reply, steps, latency_ms / 1000), "127.0.0.1", 0, backlog=4096
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    if report_cpu:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(f"server cpu seconds {usage.ru_utime + usage.ru_stime:.3f}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--policy", choices=("steps", "delegation"), default="steps")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--report-cpu", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(serve(args.policy, args.steps, args.latency_ms, args.report_cpu))


if __name__ == "__main__":
    main()
