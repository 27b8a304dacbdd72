"""Main loop of a local worker process: read an event frame, call the agent, write the response.

Run in a child the fork server (`_forkserver.py`) forked for `LocalBackend`. The worker runs
the very handler Lambda runs, on the same JSON; it exits when its request pipe closes (the
client shut down or died).
"""

from __future__ import annotations

import os
import threading
import time

from lambdaflow.agent import handler as agent
from lambdaflow.backends._frames import FRAME_HEADER, decode_body, encode_body
from lambdaflow.backends._livecapture import LiveCapture


class _Context:
    """The part of Lambda's context object the agent and user code may read."""

    function_name = "lambdaflow-local"
    memory_limit_in_mb = None

    def __init__(self, request_id: str, deadline: float, log_stream_name: str):
        self.aws_request_id = request_id
        self._deadline = deadline
        self.log_stream_name = log_stream_name

    def get_remaining_time_in_millis(self) -> int:
        if not self._deadline:
            return 2**31 - 1
        return max(0, int((self._deadline - time.time()) * 1000))


def main(request_fd: int, response_fd: int) -> None:
    requests = open(request_fd, "rb")
    send_lock = threading.Lock()  # responses (this thread) and output frames (the forwarder)

    def send(frame: bytes) -> None:
        with send_lock:
            view = memoryview(frame)
            while view:
                view = view[os.write(response_fd, view):]

    capture = LiveCapture(send)
    agent.set_output_capture(capture)
    log_stream_name = f"local:{os.getpid()}"  # once: getpid is a system call per task
    while True:
        header = requests.read(FRAME_HEADER.size)
        if len(header) < FRAME_HEADER.size:
            return  # the client closed the pipe: shut down quietly
        length, deadline = FRAME_HEADER.unpack(header)
        event = decode_body(requests.read(length))
        task_id = str(event.get("task_id"))
        capture.task_id = task_id
        response = agent.handler(event, _Context(task_id, deadline, log_stream_name))
        body = encode_body(response)
        send(FRAME_HEADER.pack(len(body), 0.0) + body)
