"""Published AWS list prices that lambdaflow's cost figures are computed from.

One table, read by the executor's cost figures and the shell's cost model. Prices are
us-east-1 list prices, first tier, as published on https://aws.amazon.com/lambda/pricing/ and
https://aws.amazon.com/s3/pricing/ (read 2026-11-30; summarised in
../shared/NOTES-lambda-runtime.md). Other regions and tiers differ: pass your own `Prices`.
"""

from __future__ import annotations

import dataclasses

PRICES_SOURCE = ("https://aws.amazon.com/lambda/pricing/, https://aws.amazon.com/s3/pricing/ "
                 "(us-east-1, first tier, read 2026-11-30)")


@dataclasses.dataclass(frozen=True)
class Prices:
    """Dollar prices for one region. Lambda bills duration per ms, rounded up."""

    gb_second: dict = dataclasses.field(
        default_factory=lambda: {"x86_64": 0.0000166667, "arm64": 0.0000133334})
    request: float = 0.20 / 1_000_000
    s3_get: float = 0.0004 / 1_000
    s3_put: float = 0.005 / 1_000

    def __post_init__(self):
        for name in ("request", "s3_get", "s3_put"):
            if getattr(self, name) < 0:
                raise ValueError(f"price {name} must be >= 0, got {getattr(self, name)}")
        for arch, price in self.gb_second.items():
            if price < 0:
                raise ValueError(f"gb_second price for {arch} must be >= 0, got {price}")

    def lambda_cost(self, gb_seconds: float, requests: int, arch: str = "x86_64") -> float:
        """Dollars for `requests` invocations billed `gb_seconds` in all on `arch`."""
        try:
            per_gb_second = self.gb_second[arch]
        except KeyError:
            raise ValueError(f"no Lambda price for architecture {arch!r}; known: "
                             f"{', '.join(sorted(self.gb_second))}") from None
        return gb_seconds * per_gb_second + requests * self.request

    def s3_cost(self, gets: int = 0, puts: int = 0) -> float:
        """Dollars for S3 requests (GET-class and PUT/COPY/POST/LIST-class)."""
        return gets * self.s3_get + puts * self.s3_put


DEFAULT_PRICES = Prices()


def gb_seconds(billed_ms: float, memory_mb: int) -> float:
    """Lambda's billing unit for one invocation: billed duration x configured memory."""
    return billed_ms / 1000.0 * memory_mb / 1024.0
