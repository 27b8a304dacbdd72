"""Checkpointed reruns: a finished task's result is stored, and a rerun of the job reuses it.

    LambdaExecutor(job_id="nightly", checkpoint_url="s3://bucket/ckpt")
      task = (pickled callable, pickled arguments) ──sha256──▶ task hash
      before running: <checkpoint_url>/<job_id>/<task hash>.result exists and verifies?
                        yes ─▶ the stored result, no invocation
                        no  ─▶ run it, then store its pickled result there

The same script run again after a crash, a Ctrl-C or a dead laptop finds the results of every
task that finished and runs only the others. A task is the same task when its callable and
arguments pickle to the same bytes (cloudpickle is deterministic for the same code and values;
a set of strings is not, across processes, because of hash randomisation: such tasks just run
again).

A stored result is a pickle: unpickling one runs code. So each is signed with an HMAC
(`lambdaflow.agent.signing`, bound to its URL) and verified before it is unpickled; one that
does not verify — corrupted, truncated, or written by someone without the key — is recomputed
and overwritten, never returned. The key must survive the process (a rerun is a new process),
so it cannot be the executor's random per-job key: it is derived from a local secret, 32
random bytes kept in a file only its owner may read (``~/.config/lambdaflow/checkpoint.key``,
created on first use with mode 0600; a file others can read is refused), and the job id.
Reruns on another machine need the same file.

Environment tunables:

- ``LAMBDAFLOW_CHECKPOINT_KEY_FILE`` — where the local secret lives; default
  ``$XDG_CONFIG_HOME/lambdaflow/checkpoint.key`` (``~/.config/...``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading

from lambdaflow.agent.signing import KEY_BYTES, JobKey
from lambdaflow.errors import ConfigError, SignatureMismatch


def key_file_path() -> str:
    explicit = os.environ.get("LAMBDAFLOW_CHECKPOINT_KEY_FILE")
    if explicit:
        return explicit
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
        os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "lambdaflow", "checkpoint.key")


def local_secret(path: str | None = None) -> bytes:
    """The local checkpoint secret: read from `path`, created there (0600) if missing."""
    path = path or key_file_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _create_secret(path)
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or info.st_uid != os.getuid():
            raise ConfigError(f"the checkpoint key file {path} must be yours and private "
                              f"(chmod 600 {path}): whoever can read it can forge stored "
                              f"results that your reruns would unpickle")
        text = source.read().strip()
    try:
        secret = bytes.fromhex(text.decode("ascii"))
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise ConfigError(f"the checkpoint key file {path} does not hold {KEY_BYTES * 2} hex "
                          f"digits; delete it to make a new one (stored checkpoints then "
                          f"no longer verify and their tasks run again)")
    return secret


def _create_secret(path: str) -> bytes:
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    secret = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return local_secret(path)
    with os.fdopen(fd, "wb") as sink:
        sink.write(secret.hex().encode() + b"\n")
    return secret


class CheckpointStore:
    """Signed results of one job's tasks under `<url>/<job_id>/`. Thread-safe."""

    def __init__(self, url: str, job_id: str, secret: bytes | None = None):
        if not job_id or "/" in job_id:
            raise ConfigError(f"job_id={job_id!r} must be a non-empty name without '/'")
        self.prefix = f"{url.rstrip('/')}/{job_id}"
        secret = secret if secret is not None else local_secret()
        # One key per job, from the local secret: a result cannot be moved to another job.
        self._key = JobKey(hmac.new(secret, b"lambdaflow-checkpoint\0" + job_id.encode(),
                                    hashlib.sha256).digest())
        self._lock = threading.Lock()
        self.reused = 0
        self.rejected = 0
        self.stored = 0

    @staticmethod
    def task_hash(serializer: str, fn_text: str, args: bytes) -> str:
        digest = hashlib.sha256(serializer.encode() + b"\0" + fn_text.encode() + b"\0")
        digest.update(args)
        return digest.hexdigest()

    def url(self, task_hash: str) -> str:
        return f"{self.prefix}/{task_hash}.result"

    def load(self, task_hash: str):
        """The stored pickled result (a bytes-like object), or None: none stored, or the
        stored one does not verify (then it is counted in `rejected` and will be
        overwritten)."""
        try:
            data = self._key.get(self.url(task_hash))
        except FileNotFoundError:
            return None
        except SignatureMismatch:
            with self._lock:
                self.rejected += 1
            return None
        with self._lock:
            self.reused += 1
        return data

    def save(self, task_hash: str, pickled: bytes) -> None:
        self._key.put(self.url(task_hash), pickled)
        with self._lock:
            self.stored += 1
