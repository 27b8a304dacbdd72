"""Local files and S3 behind one URL API, with newline-aligned byte ranges.

URLs are plain paths, ``file:///abs/path`` or ``s3://bucket/key``. The contract is documented
on `lambdaflow.storage.base.Storage`; the functions here dispatch on the URL's scheme. boto3 is
imported only when an ``s3://`` URL is first used.

    >>> from lambdaflow import storage
    >>> for r in storage.split("s3://bucket/big.txt", n=8):   # ship r to a worker, then:
    ...     for line in r.lines(): ...
"""

from lambdaflow.storage.base import ObjectChanged, Storage
from lambdaflow.storage.dispatch import (
    backend, delete, delete_prefix, exists, get, list, open_range, open_write, put, size,
)
from lambdaflow.storage.ranges import ByteRange, split

__all__ = [
    "ByteRange", "ObjectChanged", "Storage", "backend", "delete", "delete_prefix", "exists", "get", "list",
    "open_range", "open_write", "put", "size", "split",
]
