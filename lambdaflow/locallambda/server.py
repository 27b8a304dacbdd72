"""`LocalLambda`: start and stop the endpoint from Python (tests, bench scripts, the CLI)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path

from lambdaflow.errors import ConfigError
from lambdaflow.locallambda.isolation import Support

log = logging.getLogger(__name__)

WORKDIR_PREFIX = "lambdaflow-local-lambda-"


def _sweep_abandoned_workdirs() -> None:
    """Remove the working directories of endpoints that were killed (their owner is gone):
    a killed endpoint cannot clean up after itself, and unpacked code adds up."""
    for directory in Path(tempfile.gettempdir()).glob(WORKDIR_PREFIX + "*"):
        try:
            owner = int((directory / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge: no owner recorded
        try:
            os.kill(owner, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, someone else's
        log.info("local-lambda: removing %s, left by a killed endpoint (pid %d)",
                 directory, owner)
        shutil.rmtree(directory, ignore_errors=True)


class LocalLambda:
    """A Lambda-compatible endpoint serving on ``http://host:port`` in background threads.

    ::

        with LocalLambda() as endpoint:          # 127.0.0.1, an ephemeral port
            boto3.client("lambda", endpoint_url=endpoint.url).list_functions()

    `concurrency` is the account concurrency limit; `region` defaults to ``AWS_REGION`` /
    ``AWS_DEFAULT_REGION`` or us-east-1; `runtime_dir` overrides the sandbox runtime directory
    (see `lambdaflow.locallambda.runtime`). Every request must be SigV4-signed with
    `credentials` (access key, secret key), by default the ones boto3 finds in this process
    (environment, profile) when `start` runs. Nothing starts until `start`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, concurrency: int = 1000,
                 region: str | None = None, runtime_dir: str | os.PathLike | None = None,
                 credentials: tuple[str, str] | None = None, isolate: bool = True):
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
        if not 0 <= port <= 65535:
            raise ConfigError(f"port must be from 0 to 65535, got {port}")
        self.host = host
        self.port = port
        self.concurrency = concurrency
        self.region = (region or os.environ.get("AWS_REGION")
                       or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
        self._runtime_dir = Path(runtime_dir) if runtime_dir else None
        self._credentials = credentials or (None, None)
        self._isolate = isolate
        self._server = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise ConfigError("LocalLambda is not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def service(self):
        """The `LambdaService` behind the endpoint (logs, reset) for in-process callers."""
        if self._server is None:
            raise ConfigError("LocalLambda is not started; call start() first")
        return self._server.service

    def start(self) -> "LocalLambda":
        from lambdaflow.locallambda.api import HttpServer
        from lambdaflow.locallambda.auth import Keyring, server_credentials
        from lambdaflow.locallambda.isolation import probe
        from lambdaflow.locallambda.runtime import runtime_dir
        from lambdaflow.locallambda.service import LambdaService

        if self._server is not None:
            return self
        keyring = Keyring(server_credentials(*self._credentials), self.region)
        runtime = self._runtime_dir or runtime_dir()
        if not (runtime / "awslambdaric").is_dir():
            raise ConfigError(f"runtime directory {runtime} has no awslambdaric package; "
                              f"build one with: pip install --target DIR awslambdaric boto3")
        support = probe() if self._isolate else Support(False, False, "isolate=False")
        missing = support.missing()
        if missing:
            log.warning("local-lambda: sandboxes run WITHOUT %s (%s)", "; ".join(missing),
                        support.reason or "cgroups v1 memory/cpu/pids not writable")
        _sweep_abandoned_workdirs()
        self._workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
        (self._workdir / "owner.pid").write_text(str(os.getpid()))
        service = LambdaService(workdir=self._workdir, region=self.region, runtime_dir=runtime,
                                keyring=keyring, support=support, account_concurrency=self.concurrency)
        try:
            self._server = HttpServer((self.host, self.port), service)
        except OSError as exc:
            shutil.rmtree(self._workdir, ignore_errors=True)
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        service.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever,
                                         kwargs={"poll_interval": 0.1},
                                         name="local-lambda", daemon=True)
        self._thread.start()
        return self

    def logs(self, function_name: str, lines: int = 100) -> list[str]:
        """The function's most recent log lines."""
        return self.service.logs(function_name, lines)

    def reset(self) -> None:
        """Delete every function and stop every sandbox."""
        self.service.reset()

    def stop(self) -> None:
        """Stop serving, kill every sandbox, remove the working directory. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.service.close()
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "LocalLambda":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
