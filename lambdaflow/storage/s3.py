"""S3 objects (``s3://bucket/key``) through boto3.

Endpoints, credentials, profiles and region are boto3's business: it reads
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``~/.aws`` and the rest itself,
and lambdaflow adds no parallel settings. One client per process is shared by every thread
(clients are thread-safe, sessions are not, and a new session costs ~120 ms); its connection
pool is sized for many concurrent range reads.

botocore's own retries are turned off and lambdaflow retries instead, declaratively, with
tenacity: throttling, 5xx and broken connections are retried with exponential backoff plus
jitter up to `RetryPolicy.attempts`; 403, 404 and other client errors never are. A read that
breaks mid-stream resumes from the byte where it stopped. Errors leave as built-in
FileNotFoundError / PermissionError / OSError through the one table below, original as
``__cause__``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

import boto3
import botocore.config
import botocore.exceptions
import tenacity

from lambdaflow.errors import ConfigError
from lambdaflow.storage.base import ObjectChanged, Storage

SCHEME = "s3://"
#: Connections kept per client: enough for a map's concurrent range reads and part uploads.
POOL_CONNECTIONS = 64
#: Multipart part size (S3 requires >= 5 MiB for all parts but the last). Objects smaller than
#: one part are written with a single PutObject.
PART_SIZE = 8 * 1024 * 1024
#: Largest DeleteObjects batch S3 accepts.
DELETE_BATCH = 1000

# -- the error translation table --------------------------------------------------------------
# S3 error code (or bare HTTP status, which is all a HEAD response carries) -> built-in type.
_ERROR_TYPES: dict[str, type[OSError]] = {
    "NoSuchKey": FileNotFoundError,
    "NoSuchBucket": FileNotFoundError,
    "NoSuchUpload": FileNotFoundError,
    "NotFound": FileNotFoundError,
    "404": FileNotFoundError,
    "AccessDenied": PermissionError,
    "AllAccessDisabled": PermissionError,
    "AccountProblem": PermissionError,
    "InvalidAccessKeyId": PermissionError,
    "SignatureDoesNotMatch": PermissionError,
    "ExpiredToken": PermissionError,
    "InvalidToken": PermissionError,
    "Forbidden": PermissionError,
    "403": PermissionError,
}
_ERRNO = {FileNotFoundError: errno.ENOENT, PermissionError: errno.EACCES}
# Error codes that mean "slow down" whatever their HTTP status.
_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "SlowDown", "RequestLimitExceeded",
    "TooManyRequestsException", "RequestThrottled", "RequestThrottledException",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "RequestTimeout",
    "InternalError", "ServiceUnavailable",
})
# Failures of the connection itself: the request may not have reached S3, or the answer was cut.
_CONNECTION_ERRORS = (
    botocore.exceptions.ConnectionError,        # refused, connect timeout, proxy, SSL
    botocore.exceptions.HTTPClientError,        # closed/reset, read timeout, streaming error
    botocore.exceptions.IncompleteReadError,    # body shorter than Content-Length
    ConnectionError,                            # a reset surfacing from the socket itself
)


def _status(exc: botocore.exceptions.ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """Whether retrying `exc` may succeed: throttling, 5xx, a broken connection."""
    if isinstance(exc, botocore.exceptions.ClientError):
        status = _status(exc)
        return status >= 500 or status == 429 or _code(exc) in _THROTTLING
    return isinstance(exc, _CONNECTION_ERRORS)


def translate(exc: BaseException, url: str, attempts: int = 1) -> OSError:
    """The built-in error that stands for `exc` (a boto3/botocore failure) on `url`."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = _code(exc)
        kind = _ERROR_TYPES.get(code) or _ERROR_TYPES.get(str(_status(exc)), OSError)
        message = exc.response.get("Error", {}).get("Message") or code
        if code == "NoSuchBucket":
            text = f"bucket {parse(url, key_required=False)[0]!r} does not exist"
        elif kind is FileNotFoundError:
            text = "no such object"
        elif kind is PermissionError:
            text = (f"access denied ({code}: {message}); check the credentials boto3 found "
                    "and the bucket's policy")
        else:
            text = f"S3 error {code} (HTTP {_status(exc)}): {message}"
    elif isinstance(exc, botocore.exceptions.NoCredentialsError):
        kind = PermissionError
        text = ("no AWS credentials found: boto3 looks in AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws and the instance role")
    else:
        kind = OSError
        text = f"S3 request failed: {exc}"
    if attempts > 1:
        text += f" (after {attempts} attempts)"
    err = kind(_ERRNO.get(kind, errno.EIO), text, url)
    return err


# -- URLs and ranges --------------------------------------------------------------------------

def parse(url: str, *, key_required: bool = True) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not url.startswith(SCHEME):
        raise ConfigError(f"{url!r} is not an s3://bucket/key URL")
    bucket, _, key = url[len(SCHEME):].partition("/")
    if not bucket:
        raise ConfigError(f"{url!r} names no bucket; write s3://bucket/key")
    if key_required and not key:
        raise ConfigError(f"{url!r} names a bucket but no object; write s3://{bucket}/key")
    return bucket, key


def http_range(start: int, end: int | None) -> str:
    """The HTTP Range header for half-open ``[start, end)`` — the one place the inclusive
    ``bytes=first-last`` form is built. ``end=None`` reads to the end of the object."""
    if end is None:
        return f"bytes={start}-"
    if end <= start:
        raise ValueError(f"HTTP cannot express the empty range [{start}, {end})")
    return f"bytes={start}-{end - 1}"


# -- policy and client ------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """How transient S3 failures are retried: stop after `attempts` tries in all; wait
    exponentially from `initial` seconds, doubling, capped at `maximum`, plus random jitter of up
    to `initial` seconds (so many workers throttled together do not retry in lockstep)."""

    attempts: int = 5
    initial: float = 0.2
    maximum: float = 10.0

    def __post_init__(self):
        if self.attempts < 1:
            raise ConfigError(f"{type(self).__name__}.attempts must be >= 1, "
                              f"got {self.attempts}")
        if self.initial < 0 or self.maximum < self.initial:
            raise ConfigError(f"{type(self).__name__} needs 0 <= initial <= maximum, "
                              f"got {self}")

    def retrying(self, sleep: Callable[[float], None] = time.sleep, *,
                 retry_if: Callable[[BaseException], bool] = is_transient) -> tenacity.Retrying:
        """A tenacity `Retrying` with this policy's stop and wait, retrying the failures
        `retry_if` accepts (S3's transient ones unless told otherwise)."""
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=(tenacity.wait_exponential(multiplier=self.initial, max=self.maximum)
                  + tenacity.wait_random(0, self.initial)),
            retry=tenacity.retry_if_exception(retry_if),
            sleep=sleep,
            reraise=True,
        )


# The client boto3 builds depends on these variables (endpoint, credentials, region), so a
# client made before a test fixture or a user set them is not reused after.
_CLIENT_ENV = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
               "AWS_DEFAULT_REGION", "AWS_REGION")
_client_lock = threading.Lock()
_client_cache: dict[tuple, object] = {}


def shared_client():
    """This process's S3 client. Rebuilt after a fork (sockets must not be shared with the
    parent) or when boto3's environment variables changed."""
    key = (os.getpid(),) + tuple(os.environ.get(name) for name in _CLIENT_ENV)
    client = _client_cache.get(key)
    if client is None:
        with _client_lock:
            client = _client_cache.get(key)
            if client is None:
                config = botocore.config.Config(
                    max_pool_connections=POOL_CONNECTIONS,
                    # lambdaflow retries (below); botocore retrying too would multiply attempts.
                    retries={"total_max_attempts": 1, "mode": "standard"},
                )
                client = boto3.session.Session().client("s3", config=config)
                _client_cache.clear()
                _client_cache[key] = client
    return client


# -- the backend ------------------------------------------------------------------------------

class S3Storage(Storage):
    __doc__ = Storage.__doc__

    def __init__(self, *, client=None, retry: RetryPolicy = RetryPolicy(),
                 sleep: Callable[[float], None] = time.sleep, part_size: int = PART_SIZE,
                 page_size: int | None = None):
        """`client`: a boto3 S3 client to use instead of the shared one (tests point one at a
        fault-injecting proxy). `sleep` is what waits between retries (tests inject it).
        `page_size`: keys per listing request (None: S3's maximum, 1000)."""
        if part_size < 5 * 1024 * 1024:
            raise ConfigError(f"part_size must be >= 5 MiB (S3's minimum), got {part_size}")
        self._client = client
        self._retrying = retry.retrying(sleep)
        self.retry = retry
        self.part_size = part_size
        self.page_size = page_size
        self.delete_batch = min(page_size or DELETE_BATCH, DELETE_BATCH)

    @property
    def client(self):
        return self._client if self._client is not None else shared_client()

    def call(self, url: str, operation: str, **params):
        """Run one S3 API call with the retry policy; failures leave as built-in errors."""
        method = getattr(self.client, operation)
        retrying = self._retrying.copy()
        try:
            return retrying(method, **params)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                ConnectionError) as exc:
            raise translate(exc, url, retrying.statistics.get("attempt_number", 1)) from exc

    def size(self, url: str) -> int:
        bucket, key = parse(url)
        try:
            return self.call(url, "head_object", Bucket=bucket, Key=key)["ContentLength"]
        except FileNotFoundError as missing:
            # A HEAD answer has no body, so "no such key" and "no such bucket" look alike:
            # ask the bucket, only on this error path, to say which.
            try:
                self.call(url, "head_bucket", Bucket=bucket)
            except FileNotFoundError as exc:
                raise FileNotFoundError(errno.ENOENT, f"bucket {bucket!r} does not exist",
                                        url) from exc.__cause__
            raise missing

    def version(self, url: str) -> tuple[int, str | None]:
        bucket, key = parse(url)
        head = self.call(url, "head_object", Bucket=bucket, Key=key)
        token = head["ETag"]
        if head.get("VersionId") not in (None, "null"):
            token += " " + head["VersionId"]  # ETags are quoted and hold no space
        return head["ContentLength"], token

    def open_range(self, url: str, start: int, end: int | None = None,
                   version: str | None = None) -> BinaryIO:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        parse(url)
        if end is not None and end == start:
            return io.BytesIO(b"")
        reader = _RangeReader(self, url, start, end, version)
        return io.BufferedReader(reader, buffer_size=256 * 1024)

    def open_write(self, url: str) -> BinaryIO:
        parse(url)
        return _Writer(self, url)

    def list(self, prefix: str) -> Iterator[str]:
        bucket, key_prefix = parse(prefix, key_required=False)
        return self._list(prefix, bucket, key_prefix)

    def _list(self, prefix: str, bucket: str, key_prefix: str) -> Iterator[str]:
        params = {"Bucket": bucket, "Prefix": key_prefix}
        if self.page_size is not None:
            params["MaxKeys"] = self.page_size
        while True:
            page = self.call(prefix, "list_objects_v2", **params)
            for obj in page.get("Contents", ()):
                yield f"{SCHEME}{bucket}/{obj['Key']}"
            if not page.get("IsTruncated"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def delete(self, url: str) -> None:
        bucket, key = parse(url)
        self.call(url, "delete_object", Bucket=bucket, Key=key)

    def delete_prefix(self, prefix: str) -> None:
        # One DeleteObjects request per thousand keys instead of one request per key.
        bucket, key_prefix = parse(prefix, key_required=False)
        start = len(SCHEME) + len(bucket) + 1
        batch: list[dict] = []
        for url in self._list(prefix, bucket, key_prefix):
            batch.append({"Key": url[start:]})
            if len(batch) == self.delete_batch:
                self._delete_batch(prefix, bucket, batch)
                batch = []
        if batch:
            self._delete_batch(prefix, bucket, batch)

    def _delete_batch(self, prefix: str, bucket: str, batch: list[dict]) -> None:
        answer = self.call(prefix, "delete_objects", Bucket=bucket,
                           Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            kind = _ERROR_TYPES.get(first.get("Code", ""), OSError)
            raise kind(_ERRNO.get(kind, errno.EIO),
                       f"could not delete {len(errors)} object(s), first {first.get('Key')!r}: "
                       f"{first.get('Code')}: {first.get('Message')}", prefix)


class _RangeReader(io.RawIOBase):
    """Bytes ``[start, end)`` of one object from one GET, resumed from the current byte with a
    new ranged GET when the connection breaks mid-body."""

    def __init__(self, storage: S3Storage, url: str, start: int, end: int | None,
                 version: str | None = None):
        super().__init__()
        self._storage = storage
        self._url = url
        self._version = version
        self._pos = start
        self._end = end
        self._body = None
        self._eof = False
        self._resumes = 0
        self._open()

    def _open(self) -> None:
        bucket, key = parse(self._url)
        params = {"Bucket": bucket, "Key": key}
        if self._pos or self._end is not None:
            params["Range"] = http_range(self._pos, self._end)
        if self._version is not None:
            # Every GET (a resumed one too) is of that content only: S3 answers 412 otherwise.
            etag, _, version_id = self._version.partition(" ")
            params["IfMatch"] = etag
            if version_id:
                params["VersionId"] = version_id
        try:
            self._body = self._storage.call(self._url, "get_object", **params)["Body"]
        except OSError as exc:
            cause = exc.__cause__
            if (isinstance(cause, botocore.exceptions.ClientError)
                    and _code(cause) == "InvalidRange"):
                self._eof = True  # start is at or past the end of the object
            elif (isinstance(cause, botocore.exceptions.ClientError)
                    and _code(cause) == "PreconditionFailed"):
                raise ObjectChanged(self._url, f"its ETag is no longer {self._version}") from cause
            else:
                raise

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._eof or not len(buffer):
            return 0
        want = len(buffer)
        if self._end is not None:
            want = min(want, self._end - self._pos)
            if want <= 0:
                return 0
        while True:
            try:
                data = self._body.read(want)
                break
            except _CONNECTION_ERRORS as exc:
                self._resume(exc)
        if not data:
            self._eof = True
            return 0
        n = len(data)
        buffer[:n] = data
        self._pos += n
        return n

    def _resume(self, exc: BaseException) -> None:
        self._resumes += 1
        if self._resumes >= self._storage.retry.attempts:
            raise translate(exc, self._url, self._resumes) from exc
        self._body.close()
        self._open()

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
        super().close()


class _Writer(io.RawIOBase):
    """Buffers one part; the first full part starts a multipart upload, close() completes it
    (or sends a single PutObject when everything fit in one part)."""

    def __init__(self, storage: S3Storage, url: str):
        super().__init__()
        self.url = url
        self._storage = storage
        self._bucket, self._key = parse(url)
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed S3 writer")
        view = memoryview(data).cast("B")
        size = self._storage.part_size
        taken = 0
        while taken < len(view):
            room = size - len(self._buffer)
            self._buffer += view[taken:taken + room]
            taken += min(room, len(view) - taken)
            if len(self._buffer) >= size:
                self._send_part()
        return taken

    def _send_part(self) -> None:
        call = self._storage.call
        if self._upload_id is None:
            self._upload_id = call(self.url, "create_multipart_upload",
                                   Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        answer = call(self.url, "upload_part", Bucket=self._bucket, Key=self._key,
                      UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer))
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer.clear()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._upload_id is None:
                self._storage.call(self.url, "put_object", Bucket=self._bucket, Key=self._key,
                                   Body=bytes(self._buffer))
            else:
                if self._buffer:
                    self._send_part()
                self._storage.call(self.url, "complete_multipart_upload", Bucket=self._bucket,
                                   Key=self._key, UploadId=self._upload_id,
                                   MultipartUpload={"Parts": self._parts})
        except BaseException:
            # The failure that stopped the upload is the one to report; a failed abort leaves
            # only an invisible incomplete upload, which bucket lifecycle rules expire.
            with contextlib.suppress(OSError):
                self._abort_upload()
            raise
        finally:
            self._buffer = bytearray()
            super().close()

    def abort(self) -> None:
        """Drop what was written; the object is not created (or keeps its old content)."""
        if not self.closed:
            self._abort_upload()
            self._buffer = bytearray()
            super().close()

    def _abort_upload(self) -> None:
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._storage.call(self.url, "abort_multipart_upload", Bucket=self._bucket,
                               Key=self._key, UploadId=upload_id)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
