"""One storage contract, every backend: `root` is a fresh, empty place to put objects under,
as a plain path, a file:// URL and an s3:// URL (moto's HTTP server, or a real bucket when
LAMBDAFLOW_TEST_S3_BUCKET is set). Tests name objects f"{root}/name"."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Root:
    url: str
    kind: str           # "path", "file" or "s3"
    examples: int       # hypothesis examples: S3 requests cost ~3-4 ms each on moto

    def __str__(self) -> str:
        return self.url

    def __format__(self, spec: str) -> str:
        return format(self.url, spec)


@pytest.fixture(params=["path", "file", "s3"])
def root(request, tmp_path):
    if request.param == "s3":
        return Root(request.getfixturevalue("s3_bucket"), "s3", examples=25)
    base = str(tmp_path / "store")
    url = base if request.param == "path" else "file://" + base
    return Root(url, request.param, examples=150)
