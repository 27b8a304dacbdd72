"""Framing on the local backend's pipes: a header (body length, deadline) then a JSON body.

The deadline is in epoch seconds (0 for none); the worker exposes it to user code as
`context.get_remaining_time_in_millis()`, while the client enforces it.
"""

import struct

FRAME_HEADER = struct.Struct(">Id")
