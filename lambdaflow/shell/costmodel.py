"""Predicted wall time and dollars for each way of running a pipeline, and the choice of one.

The plans a pipeline can run as (``--explain`` prints each with its prediction):

- ``local``: the whole pipeline once, on the coordinator, with no workers (small inputs);
- ``parallel``: stages without a sort, split over W workers (concatenation, sums…);
- ``coordinator merge``: W workers sort ranges, the coordinator merges them with ``sort -m``;
- ``merge tree``: the same with W > fan-in: workers merge groups of fan-in parts first;
- ``shuffle``: W map workers sort and cut at splitters, W reducers each merge one key range
  (`lambdaflow.shell.shuffle`); the coordinator reads only a sample.

Each prediction is a timeline of phases from a `Constants` table: per-machine throughputs
(`Machine`, measured by ``lambdaflow calibrate`` and stored, else the defaults below, measured
on the 2-core development machine) and per-backend latencies and rates (`Backend`). Dollars
come from `lambdaflow.pricing` (the one price table). Sources of every default:

| constant | default | source |
|---|---|---|
| sort, 1 core, C locale | 60 MB/s | measured here (``sort --parallel=1``, 32 MB text, 2026-12-01) |
| ``sort -m`` by fan-in | 2: 600, 8: 300, 16: 155, 64: 65 MB/s | measured here; NOTES-lambda-runtime.md |
| line-by-line commands | 300 MB/s (grep), 600 MB/s (tr, cut) | measured here |
| process start | 2 ms | measured here |
| local backend start / task | 0.12 s / 3 ms | README (bench/overhead.py, fork server boot) |
| Lambda warm invoke | 40 ms | NOTES-lambda-runtime.md: 15–60 ms in-Region |
| Lambda cold start | 0.35 s | NOTES: 200–500 ms with boto3/cloudpickle imports |
| Lambda scaling | 100 environments/s | NOTES: +1,000 per 10 s per function |
| Lambda network | 75 MB/s per function | NOTES: ~75 MB/s sustained, S3 GET ~90 MB/s |
| S3 request latency | 30 ms | AWS S3 performance guidelines (first byte 100–200 ms tail) |
| S3 server-side copy | 100 MB/s per part request | assumed; UploadPartCopy is not published |
| Lambda CPU at 1,769 MB | 1 core of this machine | AWS: 1,769 MB = 1 vCPU (assumed equal speed) |
| prices | `lambdaflow.pricing` | aws.amazon.com/lambda/pricing, /s3/pricing |

The model is deliberately coarse: it predicts the stage that reads the pipeline's input (the
one whose width is chosen) and treats later stages as running on the coordinator over a
smaller stream. docs/SCALE.md checks it against measurements.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from lambdaflow.errors import ConfigError
from lambdaflow.pricing import DEFAULT_PRICES, Prices

MB = 1_000_000
#: Where ``lambdaflow calibrate`` stores this machine's constants (override: the variable).
CALIBRATION_ENV = "LAMBDAFLOW_COSTMODEL"
PLANS = ("local", "parallel", "coordinator merge", "merge tree", "shuffle")


def calibration_path(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get(CALIBRATION_ENV):
        return env[CALIBRATION_ENV]
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lambdaflow", "costmodel.json")


@dataclass(frozen=True)
class Machine:
    """Throughputs of one core of the machine commands run on (bytes of input per second)."""

    sort_rate: float = 60 * MB
    merge_rates: dict = field(default_factory=lambda: {2: 600 * MB, 8: 300 * MB,
                                                       16: 155 * MB, 64: 65 * MB})
    command_rates: dict = field(default_factory=lambda: {
        "grep": 300 * MB, "tr": 600 * MB, "cut": 600 * MB, "sed": 150 * MB, "awk": 100 * MB,
        "uniq": 400 * MB, "wc": 500 * MB, "cat": 2000 * MB, "head": 2000 * MB,
        "tail": 1000 * MB})
    default_rate: float = 200 * MB   # a command not measured
    process_start: float = 0.002
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    measured: str = "defaults (2-core development machine, 2026-12-01)"

    def merge_rate(self, fan_in: int) -> float:
        """``sort -m`` throughput at `fan_in`, interpolated in log(fan-in) between measured
        points (and held flat past the ends)."""
        points = sorted((int(k), float(v)) for k, v in self.merge_rates.items())
        if fan_in <= points[0][0]:
            return points[0][1]
        for (f0, r0), (f1, r1) in zip(points, points[1:]):
            if fan_in <= f1:
                t = (math.log(fan_in) - math.log(f0)) / (math.log(f1) - math.log(f0))
                return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
        # Past the last point: the slope of the last segment, in log-log, floored.
        (f0, r0), (f1, r1) = points[-2], points[-1]
        slope = (math.log(r1) - math.log(r0)) / (math.log(f1) - math.log(f0))
        return max(10 * MB, r1 * (fan_in / f1) ** slope)

    def rate(self, command: str) -> float:
        if command == "sort":
            return self.sort_rate
        return float(self.command_rates.get(command, self.default_rate))


@dataclass(frozen=True)
class Backend:
    """Where workers run, as the model sees it."""

    name: str
    start: float             # s before the first task runs (fork server boot / cold start)
    invoke: float            # s of overhead per task (round trip)
    scale_rate: float        # new workers per second (inf: all at once)
    concurrency: int         # workers at once
    read_rate: float         # bytes/s one worker reads from storage
    write_rate: float        # bytes/s one worker writes to storage
    coordinator_rate: float  # bytes/s the coordinator reads or writes storage
    request_latency: float   # s for one storage request (ranged GET, part copy)
    copy_rate: float         # bytes/s one server-side part copy moves
    cpu_share: bool          # workers share the coordinator's cores (local backend)
    memory_mb: int = 1769
    arch: str = "x86_64"


def local_backend(machine: Machine) -> Backend:
    return Backend("local", start=0.12, invoke=0.003, scale_rate=math.inf,
                   concurrency=machine.cores, read_rate=2000 * MB, write_rate=1000 * MB,
                   coordinator_rate=2000 * MB, request_latency=0.0002, copy_rate=1000 * MB,
                   cpu_share=True, memory_mb=0)


def aws_backend(concurrency: int = 1000, memory_mb: int = 1769, arch: str = "x86_64") -> Backend:
    return Backend("aws", start=0.35, invoke=0.04, scale_rate=100.0, concurrency=concurrency,
                   read_rate=75 * MB, write_rate=75 * MB, coordinator_rate=75 * MB,
                   request_latency=0.03, copy_rate=100 * MB, cpu_share=False,
                   memory_mb=memory_mb, arch=arch)


@dataclass(frozen=True)
class Prediction:
    plan: str
    width: int
    seconds: float
    dollars: float
    timeline: tuple[tuple[str, float], ...]
    coordinator_bytes: float   # bytes the coordinator reads or writes
    note: str = ""


@dataclass(frozen=True)
class Workload:
    """What the model needs to know about the pipeline."""

    size: int                          # bytes of input
    commands: tuple[str, ...]          # command names of the first stage, in order
    sort: bool                         # the first stage ends in a sort (merge or shuffle)
    shuffle_ok: bool = True            # the shuffle rule applies to it
    output_s3: bool = False            # the output is an s3:// object (server-side assembly)
    input_s3: bool = False


class CostModel:
    def __init__(self, machine: Machine, backend: Backend, prices: Prices = DEFAULT_PRICES,
                 fan_in: int = 16):
        self.machine = machine
        self.backend = backend
        self.prices = prices
        self.fan_in = fan_in

    # -- phases -----------------------------------------------------------------------------

    def _cpu(self, seconds_one_core: float, workers: int) -> float:
        """Wall time of `workers` tasks each needing `seconds_one_core` of one core."""
        b = self.backend
        if b.cpu_share:
            return seconds_one_core * workers / max(1, min(workers, self.machine.cores))
        return seconds_one_core * math.ceil(workers / b.concurrency)

    def _launch(self, workers: int) -> float:
        b = self.backend
        ramp = 0.0 if math.isinf(b.scale_rate) else min(workers, b.concurrency) / b.scale_rate
        return b.invoke + ramp

    def _scan_seconds(self, size: float, commands: Sequence[str]) -> float:
        """One core running `commands` as a pipe over `size` bytes: the slowest command,
        unless the pipe has more commands than cores."""
        costs = [size / self.machine.rate(c) for c in commands] or [0.0]
        return max(max(costs), sum(costs) / self.machine.cores)

    def _dollars(self, task_seconds: float, tasks: int, gets: float, puts: float) -> float:
        b = self.backend
        if b.name != "aws":
            return 0.0
        gb_s = task_seconds * b.memory_mb / 1024
        return (self.prices.lambda_cost(gb_s, tasks, b.arch)
                + self.prices.s3_cost(gets=gets, puts=puts))

    # -- plans ------------------------------------------------------------------------------

    def local(self, w: Workload) -> Prediction:
        m = self.machine
        read = w.size / self.backend.coordinator_rate if w.input_s3 else 0.0
        run = m.process_start * len(w.commands) + self._scan_seconds(w.size, w.commands)
        write = w.size / self.backend.coordinator_rate if w.output_s3 else 0.0
        seconds = max(read, run, write)
        return Prediction("local", 1, seconds, 0.0, (("run on the coordinator", seconds),),
                          float(w.size) * (1 + w.input_s3 + w.output_s3))

    def _maps(self, w: Workload, width: int) -> tuple[float, float]:
        """One map task's seconds (read its share, run the stage, write its output) and the
        wall time of all of them."""
        b = self.backend
        share = w.size / width
        per_task = (share / b.read_rate + share / b.write_rate
                    + self._scan_seconds(share, w.commands))
        return per_task, self._cpu(per_task, width)

    def parallel(self, w: Workload, width: int) -> Prediction:
        b = self.backend
        per_task, wall = self._maps(w, width)
        start, launch = b.start, self._launch(width)
        gather = w.size / b.coordinator_rate if not w.sort else 0.0
        timeline = (("start", start), ("launch", launch), ("workers", wall),
                    ("gather on the coordinator", gather))
        parts = math.ceil(w.size / width / (8 * 1024 * 1024)) + 1
        dollars = self._dollars(per_task * width, width, width * 2, width * parts)
        return Prediction("parallel", width, sum(t for _, t in timeline), dollars, timeline,
                          gather * b.coordinator_rate)

    def merge(self, w: Workload, width: int) -> Prediction:
        """Workers sort their ranges, then one merge (a tree past the fan-in)."""
        b, m = self.backend, self.machine
        per_task, wall = self._maps(w, width)
        timeline = [("start", b.start), ("launch", self._launch(width)), ("sort ranges", wall)]
        tasks, task_seconds = width, per_task * width
        gets = puts = 0.0
        parts = width
        level = 0
        while parts > self.fan_in:
            groups = math.ceil(parts / self.fan_in)
            share = w.size / groups
            one = (share / b.read_rate + share / m.merge_rate(self.fan_in)
                   + share / b.write_rate)
            timeline.append((f"merge level {level + 1} ({groups} workers)",
                             self._launch(groups) + self._cpu(one, groups)))
            tasks += groups
            task_seconds += one * groups
            gets += parts
            puts += groups * (share / (8 * 1024 * 1024) + 2)
            parts = groups
            level += 1
        final = max(w.size / m.merge_rate(parts), w.size / b.coordinator_rate)
        timeline.append((f"coordinator sort -m of {parts} parts", final))
        gets += parts
        puts += width * (w.size / width / (8 * 1024 * 1024) + 2)
        dollars = self._dollars(task_seconds, tasks, gets + width, puts)
        name = "merge tree" if level else "coordinator merge"
        return Prediction(name, width, sum(t for _, t in timeline), dollars, tuple(timeline),
                          float(w.size) * (2 if w.output_s3 else 1))

    def shuffle(self, w: Workload, width: int) -> Prediction:
        b, m = self.backend, self.machine
        share = w.size / width
        sample = min(8 * 1024 * 1024, max(64 * 1024, w.size / 400))  # shuffle.SAMPLE_*
        probes = min(64, max(1, sample // 4096))
        sample_s = probes * b.request_latency / 8 + sample / b.coordinator_rate \
            + sample / m.sort_rate
        per_map, map_wall = self._maps(w, width)
        reduce_one = (width * b.request_latency / 16 + share / b.read_rate
                      + share / m.merge_rate(width) + share / b.write_rate)
        reduce_wall = self._launch(width) + self._cpu(reduce_one, width)
        if w.output_s3:
            copies = math.ceil(width / 64)  # storage.compose.COPY_THREADS at once
            assemble = copies * (b.request_latency + share / b.copy_rate)
            coordinator = sample
        else:
            assemble = w.size / b.coordinator_rate
            coordinator = sample + w.size
        timeline = (("start", b.start), ("sample and splitters", sample_s),
                    ("launch maps", self._launch(width)), ("map: sort and cut", map_wall),
                    ("reduce: merge one key range", reduce_wall),
                    ("assemble the output", assemble))
        part_puts = math.ceil(share / (8 * 1024 * 1024)) + 2
        puts = width * part_puts * 2 + width + 2
        gets = width * width + width + probes
        dollars = self._dollars(per_map * width + reduce_one * width, 2 * width, gets, puts)
        return Prediction("shuffle", width, sum(t for _, t in timeline), dollars, timeline,
                          coordinator)

    def predictions(self, w: Workload, widths: Sequence[int]) -> list[Prediction]:
        """Every plan at every width in `widths` (plus `local`)."""
        out = [self.local(w)]
        for width in widths:
            if not w.sort:
                out.append(self.parallel(w, width))
                continue
            out.append(self.merge(w, width))
            if w.shuffle_ok:
                out.append(self.shuffle(w, width))
        return out

    def choose(self, w: Workload, widths: Sequence[int], max_cost: float | None = None,
               allow_local: bool = True) -> tuple[Prediction, list[Prediction]]:
        """The fastest prediction whose cost is within `max_cost`; and all considered."""
        considered = self.predictions(w, widths)
        if not allow_local:
            considered = [p for p in considered if p.plan != "local"]
        affordable = [p for p in considered if max_cost is None or p.dollars <= max_cost]
        if not affordable:
            cheapest = min(considered, key=lambda p: p.dollars)
            raise ConfigError(f"no plan costs at most ${max_cost:.6f}: the cheapest is "
                              f"{cheapest.plan} at width {cheapest.width}, predicted "
                              f"${cheapest.dollars:.6f}; raise --max-cost")
        best = min(affordable, key=lambda p: (round(p.seconds, 4), p.dollars, p.width))
        return best, considered


def auto_widths(backend: Backend) -> list[int]:
    """Widths `--width auto` considers: powers of two up to what the backend runs at once
    (local: the cores; Lambda: up to 1,024)."""
    top = backend.concurrency if backend.cpu_share else min(1024, max(1, backend.concurrency))
    widths, w = [], 2
    while w <= top:
        widths.append(w)
        w *= 2
    return widths or [max(2, top)]


# -- stored calibration -----------------------------------------------------------------------

def load_machine(env: Mapping[str, str] | None = None) -> Machine:
    """This machine's calibrated constants, or the defaults when none are stored."""
    path = calibration_path(env)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return Machine()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the cost model's calibration ({exc}); run "
                          "`lambdaflow calibrate` again or delete it") from exc
    known = {f.name for f in dataclasses.fields(Machine)}
    values = {k: v for k, v in data.items() if k in known}
    if "merge_rates" in values:
        values["merge_rates"] = {int(k): float(v) for k, v in values["merge_rates"].items()}
    return dataclasses.replace(Machine(), **values)


def save_machine(machine: Machine, env: Mapping[str, str] | None = None) -> str:
    path = calibration_path(env)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(dataclasses.asdict(machine), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def parse_size(text: str) -> int:
    """``100GB``, ``1.5GiB``, ``200M``, ``4096`` → bytes (decimal units, binary with i)."""
    units = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
             "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20,
             "gib": 2**30, "tib": 2**40}
    s = text.strip().lower()
    number = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(number):].strip()
    try:
        value = float(number)
    except ValueError:
        value = -1
    if unit not in units or value < 0:
        raise ConfigError(f"size {text!r} is not a size: write e.g. 4096, 200MB, 100GB, 1.5GiB")
    return int(value * units[unit])


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def replace_concurrency(backend: Backend, concurrency: int) -> Backend:
    """`backend` running `concurrency` workers at once (the executor's max_workers)."""
    return dataclasses.replace(backend, concurrency=max(1, concurrency))
