"""One object from the concatenation of others, copied server-side where the scheme allows.

On S3 (every object ``s3://``): one multipart upload whose parts are ``UploadPartCopy`` of
byte ranges of the sources, so the bytes never leave S3. S3 wants every part but the last to
hold 5 MiB to 5 GiB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
`plan_parts` copies a source range as a part when it is big enough, and gathers sources too
small to stand alone, with the start of the next source, into a part this process uploads —
the only bytes it reads. Elsewhere the sources are streamed into the destination in order.

    read = compose.concatenate([(url, size), ...], "s3://bucket/out")
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
from dataclasses import dataclass
from typing import Sequence

from lambdaflow.storage import dispatch
from lambdaflow.storage.base import COPY_CHUNK, copy_counted

#: S3's multipart limits: smallest part but the last, largest part, most parts.
MIN_PART = 5 * 1024 * 1024
MAX_PART = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
#: Part copies in flight at once (each is one server-side request).
COPY_THREADS = 64


@dataclass(frozen=True)
class Part:
    """One part of the upload: ``(source index, start, end)`` segments; `copy` when it is one
    source range S3 copies itself, else bytes this process reads and uploads."""

    segments: tuple[tuple[int, int, int], ...]
    copy: bool

    @property
    def size(self) -> int:
        return sum(end - start for _, start, end in self.segments)


def plan_parts(sizes: Sequence[int], min_part: int = MIN_PART,
               max_part: int = MAX_PART) -> list[Part]:
    """Parts covering the sources in order, every one but the last within
    [min_part, max_part]; as much as possible copied server-side."""
    last = max((i for i, s in enumerate(sizes) if s > 0), default=-1)
    parts: list[Part] = []
    pending: list[tuple[int, int, int]] = []
    pending_size = 0
    for i, size in enumerate(sizes):
        pos = 0
        if pending and size:
            pos = min(min_part - pending_size, size)
            pending.append((i, 0, pos))
            pending_size += pos
            if pending_size >= min_part:
                parts.append(Part(tuple(pending), False))
                pending, pending_size = [], 0
        rest = size - pos
        if rest <= 0:
            continue
        if not pending and (rest >= min_part or i == last):
            pieces = -(-rest // max_part)
            for k in range(pieces):
                a = pos + rest * k // pieces
                b = pos + rest * (k + 1) // pieces
                parts.append(Part(((i, a, b),), True))
        else:
            pending.append((i, pos, size))
            pending_size += rest
    if pending:
        parts.append(Part(tuple(pending), False))
    return parts


def concatenate(sources: Sequence[tuple[str, int]], dest: str) -> int:
    """Write the objects ``(url, size)`` one after another to `dest`; return how many of
    their bytes this process read (0 when S3 copied everything itself)."""
    urls = [u for u, _ in sources]
    if (dispatch.scheme_of(dest) == "s3" and all(dispatch.scheme_of(u) == "s3" for u in urls)
            and sum(s for _, s in sources) >= MIN_PART):
        return _s3_concatenate(sources, dest)
    read = 0
    with dispatch.open_write(dest) as out:
        for url, _ in sources:
            with dispatch.open_range(url, 0) as src:
                read += copy_counted(src, out)
    return read


def _s3_concatenate(sources: Sequence[tuple[str, int]], dest: str) -> int:
    from lambdaflow.storage import s3

    parts = plan_parts([s for _, s in sources])
    if len(parts) > MAX_PARTS:
        raise ValueError(f"{dest}: {len(parts)} parts exceed S3's {MAX_PARTS}; use fewer, "
                         "larger sources")
    backend = dispatch.backend(dest)
    bucket, key = s3.parse(dest)
    upload = backend.call(dest, "create_multipart_upload", Bucket=bucket, Key=key)["UploadId"]

    def send(number: int, part: Part) -> tuple[dict, int]:
        if part.copy:
            (index, start, end), = part.segments
            src_bucket, src_key = s3.parse(sources[index][0])
            answer = backend.call(dest, "upload_part_copy", Bucket=bucket, Key=key,
                                  UploadId=upload, PartNumber=number,
                                  CopySource={"Bucket": src_bucket, "Key": src_key},
                                  CopySourceRange=s3.http_range(start, end))
            return {"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]}, 0
        body = bytearray()
        for index, start, end in part.segments:
            with dispatch.open_range(sources[index][0], start, end) as src:
                shutil.copyfileobj(src, _Appender(body), COPY_CHUNK)
        answer = backend.call(dest, "upload_part", Bucket=bucket, Key=key, UploadId=upload,
                              PartNumber=number, Body=bytes(body))
        return {"PartNumber": number, "ETag": answer["ETag"]}, len(body)

    try:
        with concurrent.futures.ThreadPoolExecutor(COPY_THREADS) as pool:
            done = list(pool.map(lambda args: send(*args), enumerate(parts, 1)))
        backend.call(dest, "complete_multipart_upload", Bucket=bucket, Key=key,
                     UploadId=upload, MultipartUpload={"Parts": [d for d, _ in done]})
    except BaseException:
        # The failure is what to report; a failed abort leaves only an invisible incomplete
        # upload, which bucket lifecycle rules expire.
        with contextlib.suppress(OSError):
            backend.call(dest, "abort_multipart_upload", Bucket=bucket, Key=key,
                         UploadId=upload)
        raise
    return sum(n for _, n in done)


class _Appender:
    """A write-only view of a bytearray, for shutil.copyfileobj."""

    def __init__(self, target: bytearray):
        self._target = target

    def write(self, data) -> int:
        self._target += data
        return len(data)
