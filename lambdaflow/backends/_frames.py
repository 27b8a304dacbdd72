"""Framing on the local backend's pipes: a header (body length, deadline) then a JSON body.

The deadline is in epoch seconds (0 for none); the worker exposes it to user code as
`context.get_remaining_time_in_millis()`, while the client enforces it.

From worker to client, a frame whose deadline field is negative is not a response but a piece
of what a task printed, sent as it is printed: OUTPUT_STDOUT or OUTPUT_STDERR, with a body of
the task id, a NUL, and the raw bytes. Any number of them may come before a task's response
(and, from processes a task left running, after it).

Also the messages on the fork server's control socket (`_forkserver.py` describes them), kept
here so the client imports the protocol, not the server and, through it, the agent.
"""

import json
import struct

FRAME_HEADER = struct.Struct(">Id")

# Fork server control messages: SOCK_SEQPACKET keeps their boundaries, so they need no length.
CONTROL_REQUEST = struct.Struct(">cq")  # FORK + memory_mb, or REAP + pid
CONTROL_REPLY = struct.Struct(">q")
FORK, REAP = b"F", b"R"

# One encoder and decoder for every frame: json.dumps builds a new encoder per call when given
# separators, and json.loads sniffs the encoding of bytes in Python; both show on trivial tasks.
_encoder = json.JSONEncoder(separators=(",", ":"))
_decoder = json.JSONDecoder()


def encode_body(doc: dict) -> bytes:
    """Compact UTF-8 JSON for one event or response."""
    return _encoder.encode(doc).encode()


def decode_body(data: bytes) -> dict:
    return _decoder.decode(data.decode())


OUTPUT_STDOUT, OUTPUT_STDERR = -1.0, -2.0
OUTPUT_STREAMS = {OUTPUT_STDOUT: "stdout", OUTPUT_STDERR: "stderr"}


def encode_output(marker: float, task_id: str, data: bytes) -> bytes:
    """A whole output frame (header included)."""
    body = task_id.encode() + b"\0" + data
    return FRAME_HEADER.pack(len(body), marker) + body


def decode_output(body: bytes) -> tuple[str, bytes]:
    """(task id, bytes) of an output frame's body."""
    task_id, _, data = body.partition(b"\0")
    return task_id.decode(), data
