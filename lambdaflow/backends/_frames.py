"""Framing on the local backend's pipes: a header (body length, deadline) then a JSON body.

The deadline is in epoch seconds (0 for none); the worker exposes it to user code as
`context.get_remaining_time_in_millis()`, while the client enforces it.
"""

import json
import struct

FRAME_HEADER = struct.Struct(">Id")

# One encoder and decoder for every frame: json.dumps builds a new encoder per call when given
# separators, and json.loads sniffs the encoding of bytes in Python; both show on trivial tasks.
_encoder = json.JSONEncoder(separators=(",", ":"))
_decoder = json.JSONDecoder()


def encode_body(doc: dict) -> bytes:
    """Compact UTF-8 JSON for one event or response."""
    return _encoder.encode(doc).encode()


def decode_body(data: bytes) -> dict:
    return _decoder.decode(data.decode())
