"""AWS Lambda's published limits and naming rules, written down once.

The deploy step checks them before any AWS call, the local endpoint enforces them as Lambda
does, and the transports size their payloads by them. When AWS changes a limit, change it here.
"""

from __future__ import annotations

import re

MEMORY_MB = (128, 10240)
TIMEOUT_S = (1, 900)
EPHEMERAL_MB = (512, 10240)
MAX_LAYERS = 5
MAX_ENV_BYTES = 4096                     # all keys and values of a function's environment
MAX_ZIPPED = 50 * 1024 * 1024            # direct upload; larger zips go through S3
MAX_UNZIPPED = 262_144_000               # the deployment package, unzipped (250 MB)
SYNC_PAYLOAD = 6 * 1024 * 1024           # a RequestResponse request or response
EVENT_PAYLOAD = 1024 * 1024              # an Event (asynchronous) request, since October 2025
ARCHITECTURES = ("x86_64", "arm64")
#: Python versions Lambda has a managed runtime for (runtime ids are "python" + version).
PYTHON_VERSIONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
RUNTIMES = tuple(f"python{version}" for version in PYTHON_VERSIONS)

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]+$")   # at least two characters, as Lambda's API says
#: Variables Lambda sets itself and refuses in a function's environment.
RESERVED_ENV = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
