"""Signed payloads: a pickle that travels through storage carries an HMAC bound to its URL.

Anyone who can write to a job's storage prefix could otherwise replace a task's arguments or
result and have the other side unpickle — run — their code. So every pickle lambdaflow puts in
storage is written with an HMAC-SHA256 keyed by the job's random key, over the URL it is
stored at and its bytes, and verified before a single byte of it is unpickled. The key never
goes to storage: it travels only inside the invocation event (which IAM protects on Lambda,
and a private pipe on the local backend). docs/SECURITY.md has the threat model.

    key = JobKey.new()                        # per job, on the client
    event["job_key"] = key.text               # how a worker gets it
    key = JobKey.from_text(event["job_key"])  # on the worker

    key.put(url, pickled)                     # write a signed object, returns url
    data = key.get(url)                       # read and verify; SignatureMismatch names url
    blob = key.sign(url, pickled)             # the same, without storage:
    data = key.verify(url, blob)              #   bytes in, bytes-like out

Stored layout: ``b"LFS1"`` + 32-byte tag + payload, where tag = HMAC-SHA256(key,
``b"lambdaflow-signed-v1\\0" + url + b"\\0" + payload``). Binding the URL means a valid
object copied to another URL (another task's result, a swapped argument) fails too. `verify`
and `get` return a memoryview over the payload (no copy of a large spill); `pickle.loads`,
cloudpickle and dill take it as it is, ``bytes(view)`` makes a copy.

Only the standard library here (and `lambdaflow.storage`, imported lazily by `put`/`get`), so
the agent imports it at no cost.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from lambdaflow.errors import SignatureMismatch

KEY_BYTES = 32
MAGIC = b"LFS1"
TAG_BYTES = hashlib.sha256().digest_size
HEADER_BYTES = len(MAGIC) + TAG_BYTES
_DOMAIN = b"lambdaflow-signed-v1\0"


class JobKey:
    """A job's secret signing key. It refuses to be pickled and its repr hides it, so it
    cannot leak into storage or logs by accident; `text` is what travels in events."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes):
        if not isinstance(secret, bytes) or len(secret) != KEY_BYTES:
            raise ValueError(f"a job key is {KEY_BYTES} bytes")
        self._secret = secret

    @classmethod
    def new(cls) -> "JobKey":
        """A fresh random key (the executor makes one per job)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> "JobKey":
        """The key from its `text` form, as an event carries it."""
        try:
            return cls(bytes.fromhex(text))
        except (TypeError, ValueError):
            raise ValueError(f"a job key is {KEY_BYTES * 2} hex digits") from None

    @property
    def text(self) -> str:
        """The key as hex, for the invocation event. Never write it to storage or a log."""
        return self._secret.hex()

    def _tag(self, url: str, payload) -> bytes:
        mac = hmac.new(self._secret, _DOMAIN, hashlib.sha256)
        mac.update(url.encode("utf-8"))
        mac.update(b"\0")
        mac.update(payload)
        return mac.digest()

    def sign(self, url: str, payload) -> bytes:
        """The signed form of `payload` (bytes-like) as it is to be stored at `url`."""
        return MAGIC + self._tag(url, payload) + bytes(payload)

    def verify(self, url: str, blob) -> memoryview:
        """The payload of `blob` read from `url`, or `SignatureMismatch` naming `url` when its
        signature does not match (nothing of it should then be unpickled)."""
        view = memoryview(blob)
        if len(view) < HEADER_BYTES or view[:len(MAGIC)] != MAGIC:
            raise SignatureMismatch(
                f"{url} is not a signed lambdaflow payload ({len(view)} bytes, no signature "
                f"header): it was replaced or truncated after lambdaflow wrote it; it was not "
                f"unpickled", url=url)
        payload = view[HEADER_BYTES:]
        if not hmac.compare_digest(view[len(MAGIC):HEADER_BYTES], self._tag(url, payload)):
            raise SignatureMismatch(
                f"the signature of {url} does not match its contents: the object was changed, "
                f"copied from another URL, or written without this job's key; it was not "
                f"unpickled", url=url)
        return payload

    def put(self, url: str, payload) -> str:
        """Write `payload` signed at `url` (streamed: the payload is not copied); returns url."""
        from lambdaflow import storage  # only spilled payloads need storage (and maybe boto3)

        with storage.open_write(url) as out:
            out.write(MAGIC + self._tag(url, payload))
            out.write(payload)
        return url

    def get(self, url: str) -> memoryview:
        """Read `url` and return its verified payload (see `verify`)."""
        from lambdaflow import storage

        return self.verify(url, storage.get(url))

    def __repr__(self) -> str:
        return "JobKey(<secret>)"

    def __reduce__(self):
        raise TypeError("a JobKey is never pickled: it must not reach storage; send key.text "
                        "in the invocation event instead")
