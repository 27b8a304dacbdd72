"""Ray-style tasks over `LambdaExecutor`: ``@lf.remote``, ``lf.get``/``wait``/``put``/``cancel``.

    import lambdaflow as lf

    @lf.remote
    def add(a, b):
        return [x + y for x, y in zip(a, b)]

    lf.init()                              # optional: the first use starts a local executor
    total = add.remote(add.remote(a, b), c)   # refs as arguments: no round trip per level
    print(lf.get(total))
    lf.shutdown()

A `Session` (the one `lf.init` makes, or one per worker process for nested tasks) owns one
`LambdaExecutor` per distinct set of remote options (the `lf.init` options with a remote
function's `timeout=`, `retries=`, `memory=` or `function=` over them), so every task still
goes through the executor, its backend and the agent: one wire path. Scheduling is in
`lambdaflow.graph`, refs and stored objects in `lambdaflow.objects`, the local backend's
channel for nested tasks in `lambdaflow.nested`.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import functools
import itertools
import threading
import time
import uuid

from lambdaflow import graph
from lambdaflow.agent import wire
from lambdaflow.errors import ConfigError, LambdaflowError
from lambdaflow.objects import InlineValue, ObjectRef, store, use_key

#: Options `@lf.remote(...)` and `.options(...)` take.
REMOTE_OPTIONS = ("memory", "timeout", "retries", "function")
#: Threads a worker's executor for nested tasks may keep busy (each waits on one child).
_NESTED_THREADS = 64


class GetTimeoutError(LambdaflowError, TimeoutError):
    """`lf.get` ran out of its `timeout` before every ref was done (Ray's GetTimeoutError)."""


class RemoteFunction:
    """A function made remote by ``@lf.remote``: call it with ``.remote(...)``."""

    def __init__(self, fn, options: dict):
        _check_options(options)
        self._fn = fn
        self._options = dict(options)
        self._key = tuple(sorted(self._options.items()))  # which executor runs its calls
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        name = getattr(self._fn, "__name__", "the function")
        raise TypeError(f"remote function {name!r} cannot be called directly; call "
                        f"{name}.remote(...) to run it as a task and lf.get(ref) for its value")

    def remote(self, *args, **kwargs) -> ObjectRef:
        """Run the function as a task; return the `ObjectRef` of its result at once."""
        return _session().call(self._fn, self._key, args, kwargs)

    def options(self, **options) -> "RemoteFunction":
        """The same function with these options (``memory``, ``timeout``, ``retries``,
        ``function``) over its own, for the calls made through the result."""
        return RemoteFunction(self._fn, {**self._options, **options})

    def __reduce__(self):
        return RemoteFunction, (self._fn, self._options)


def remote(*args, **options):
    """``@lf.remote`` or ``@lf.remote(memory=, timeout=, retries=, function=)``.

    `timeout` and `retries` are `LambdaExecutor`'s; `memory` caps a local worker (MB) — on
    Lambda memory is the function's, so deploy one with ``--memory`` and pass `function=`.
    """
    if args and options or len(args) > 1:
        raise TypeError("use @lf.remote or @lf.remote(option=value, ...)")
    if args:
        return _make_remote(args[0], {})
    return lambda fn: _make_remote(fn, options)


def _make_remote(fn, options: dict) -> RemoteFunction:
    if isinstance(fn, type):
        raise TypeError(f"@lf.remote on class {fn.__name__!r}: lambdaflow has no actors — a "
                        f"Lambda invocation keeps no state between calls. Keep state in "
                        f"storage (lf.put, or objects your tasks read and write), or pass it "
                        f"in and out of remote functions")
    if not callable(fn):
        raise TypeError(f"@lf.remote needs a function, not {type(fn).__name__}")
    return RemoteFunction(fn, options)


def _check_options(options: dict) -> None:
    unknown = set(options) - set(REMOTE_OPTIONS)
    if unknown:
        raise ConfigError(f"unknown remote option(s) {', '.join(sorted(unknown))}; "
                          f"lambdaflow takes {', '.join(REMOTE_OPTIONS)}")


class Session:
    """Executors, shipped callables and the nested-task channel of one client (or worker)."""

    def __init__(self, executor_options: dict, *, store_over: float | None = None,
                 task_ctx: graph.TaskContext | None = None, job_key=None):
        from lambdaflow.agent.signing import JobKey

        self._executor_options = dict(executor_options)
        # One signing key for all the session's executors (and its tasks' nested ones): a
        # task's stored result may be read by a task of any of them.
        self.job_key = job_key or JobKey.new()
        self._ctx = task_ctx  # in a worker: where nested tasks go
        self._executors: dict[tuple, object] = {}
        self._submitters: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._name = uuid.uuid4().hex[:8]
        self._server = None
        self._closed = False
        if task_ctx is not None:
            self.serializer, self.store_over = task_ctx.serializer, task_ctx.store_over
            return
        default = self.executor_for(())  # checks the options now, as lf.init should
        self.serializer = default.config.serializer
        if store_over is None:
            # The largest result that still comes back inline (base64 in the response).
            store_over = (default.backend.inline_limit - wire.RESPONSE_OVERHEAD) * 3 // 4
        elif not store_over >= 0:
            raise ConfigError(f"store_over={store_over!r} must be a number of bytes >= 0")
        self.store_over = store_over

    # -- executors ------------------------------------------------------------------------------

    def executor_for(self, key: tuple):
        with self._lock:
            executor = self._executors.get(key)
            if executor is None:
                if self._closed:
                    raise RuntimeError("lambdaflow was shut down; call lf.init() again")
                executor = self._executors[key] = self._make_executor(key)
            return executor

    def _make_executor(self, key: tuple):
        from lambdaflow.executor import LambdaExecutor

        overrides = dict(key)
        if "memory" in overrides:
            overrides["memory_mb"] = overrides.pop("memory")
        ctx = self._ctx
        if ctx is None:
            return LambdaExecutor(**{**self._executor_options, **overrides},
                                  job_key=self.job_key)
        common = dict(max_workers=_NESTED_THREADS, spill_url=ctx.spill_root,
                      serializer=ctx.serializer, retries=overrides.get("retries", 0),
                      job_key=self.job_key)
        if ctx.kind == "local" and "function" not in overrides:
            from lambdaflow.nested import ParentBackend

            # The client's executor for `key` enforces timeout and memory.
            return LambdaExecutor(backend=ParentBackend(ctx.parent, key, ctx.inline_limit),
                                  **common)
        # On Lambda the worker invokes its own function, with boto3's own configuration.
        return LambdaExecutor(function=overrides.get("function", ctx.function),
                              timeout=overrides.get("timeout"), **common)

    def _context(self, key: tuple, executor) -> graph.TaskContext:
        prefix = executor.storage_prefix()
        local = executor.config.backend == "local"
        return graph.TaskContext(
            kind="local" if local else "aws",
            parent=self._parent_path() if local else None,
            function=executor.config.function, key=key,
            objects_prefix=None if prefix is None else f"{prefix}/objects",
            spill_root=None if prefix is None else f"{prefix}/nested",
            store_over=self.store_over, serializer=self.serializer,
            inline_limit=executor.backend.inline_limit)

    def _parent_path(self) -> str:
        if self._ctx is not None:
            return self._ctx.parent
        with self._lock:
            if self._server is None:
                from lambdaflow.nested import ParentServer

                self._server = ParentServer(self.executor_for)
            return self._server.path

    def _submitter(self, fn, key: tuple):
        """How calls of `fn` under options `key` reach their executor (made once: per call it
        is one dict lookup)."""
        submit = self._submitters.get((fn, key))
        if submit is None:
            executor = self.executor_for(key)
            task = graph.make_task(fn, self._context(key, executor))

            def submit(ref, layout, values, _into=executor._submit_into):
                return _into(ref, task, (ref.id, layout, *values), {})

            self._submitters[(fn, key)] = submit
        return submit

    # -- refs -----------------------------------------------------------------------------------

    def new_ref(self) -> ObjectRef:
        return ObjectRef(f"{self._name}-{next(self._ids)}", self.serializer)

    def call(self, fn, key: tuple, args: tuple, kwargs: dict) -> ObjectRef:
        submit = self._submitter(fn, key)
        ref = self.new_ref()
        graph.call(ref, submit, args, kwargs, self.serializer)
        if _current.started is not None:
            _current.started.append(ref)
        return ref

    def put(self, value) -> ObjectRef:
        ref = self.new_ref()
        data = wire.dumps(wire.serializer_module(self.serializer), value)
        if len(data) <= self.store_over:
            ref.set_result(InlineValue(data, self.serializer))
            return ref
        prefix = self.executor_for(()).storage_prefix()
        if prefix is None:
            raise ConfigError(f"lf.put of {len(data) / 1e6:.1f} MB pickled needs storage, and "
                              f"the executor has none: pass spill_url='s3://bucket/prefix' to "
                              f"lf.init (or set LAMBDAFLOW_SPILL_URL)")
        ref.set_result(store().put(value, self.serializer, f"{prefix}/objects", self.job_key))
        return ref

    @contextlib.contextmanager
    def blocked(self):
        """Around a wait inside a task: lend the task's slot to the tasks it waits for."""
        ctx = _current.ctx
        if ctx is None or ctx.kind != "local":
            yield
            return
        from lambdaflow.nested import ParentBackend

        channel = ParentBackend(ctx.parent, ctx.key, ctx.inline_limit)
        lent = channel.lend(ctx.key)
        try:
            yield
        finally:
            channel.reclaim(lent)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executors, self._executors = list(self._executors.values()), {}
            server, self._server = self._server, None
            self._submitters.clear()
        for executor in executors:
            executor.shutdown(wait=True, cancel_futures=True)
        if server is not None:
            server.close()


# -- which session: lf.init's, or the running task's -----------------------------------------

class _Current:
    """The task this worker process is running (set by `graph.run_task`): global, not
    thread-local, since threads a task starts may start tasks too."""

    ctx: graph.TaskContext | None = None
    session: Session | None = None
    started: list | None = None


_current = _Current()
_client: Session | None = None
_client_lock = threading.Lock()
_worker_sessions: dict[tuple, Session] = {}
_last_worker_session: list = []


def task_started(ctx: graph.TaskContext):
    """A task starts on this worker: route `f.remote()` and `lf.get` to nested tasks until
    `task_ended(token)`."""
    from lambdaflow.agent.handler import current_job_key

    job_key = current_job_key()
    text = job_key.text if job_key else None
    last = _last_worker_session
    if last and last[0] is ctx and last[1] == text:
        session = last[2]  # the common case: the same function again, same job
    else:
        key = (ctx.kind, ctx.parent, ctx.function, ctx.spill_root, ctx.store_over,
               ctx.serializer, ctx.inline_limit, text)
        session = _worker_sessions.get(key)
        if session is None:
            session = _worker_sessions[key] = Session({}, task_ctx=ctx, job_key=job_key)
        _last_worker_session[:] = [ctx, text, session]
    token = (_current.ctx, _current.session, _current.started)
    _current.ctx, _current.session, _current.started = ctx, session, []
    return token


def task_ended(token) -> None:
    """The task's function returned: it ends only once the tasks it started are over (a
    Lambda may be frozen right after it answers)."""
    try:
        unfinished = [ref for ref in _current.started if not ref.done()]
        if unfinished:
            with _current.session.blocked():
                concurrent.futures.wait(unfinished)
    finally:
        _current.ctx, _current.session, _current.started = token


def _session() -> Session:
    if _current.session is not None:
        return _current.session
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = Session({})
                use_key(_client.job_key)
    return _client


def init(*, ignore_reinit_error: bool = False, store_over: float | None = None,
         **executor_options) -> None:
    """Start lambdaflow's default executor with `LambdaExecutor`'s options (``function=``,
    ``max_workers=``, ``spill_url=``…). `store_over`: results and `put` objects whose pickle is
    over this many bytes stay in storage (default: what fits in a backend response). Calling
    it again before `shutdown` is an error unless `ignore_reinit_error`."""
    global _client
    with _client_lock:
        if _client is not None:
            if ignore_reinit_error:
                return
            raise RuntimeError("lambdaflow is already initialized (lf.init was called, or a "
                               "remote call started the default executor); call "
                               "lf.shutdown() first, or pass ignore_reinit_error=True")
        _client = Session(executor_options, store_over=store_over)
        use_key(_client.job_key)


def is_initialized() -> bool:
    return _client is not None


def shutdown() -> None:
    """Stop everything, as `ray.shutdown` does: queued and running tasks are cancelled (a
    running local task's worker is killed; Lambda invocations are abandoned), refs waiting for
    them with them; the workers stop and every stored object of the session is deleted."""
    global _client
    with _client_lock:
        session, _client = _client, None
    if session is not None:
        session.close()
        store().forget_all()


atexit.register(shutdown)


def put(value) -> ObjectRef:
    """Store `value` once; its ref can go to any number of tasks (over `store_over` bytes, it is
    uploaded to storage and every worker reads it there, once per warm worker)."""
    return _session().put(value)


def get(object_refs, *, timeout: float | None = None):
    """The value of a ref, or the list of values of a list of refs, waiting up to `timeout`
    seconds (`GetTimeoutError` past it). A failed task raises its exception here."""
    single = isinstance(object_refs, ObjectRef)
    refs = [object_refs] if single else _ref_list(object_refs, "lf.get")
    if not all(ref.done() for ref in refs):
        with _session().blocked():
            _, not_done = concurrent.futures.wait(refs, timeout=timeout)
        if not_done:
            raise GetTimeoutError(f"{len(not_done)} of {len(refs)} refs were not ready within "
                                  f"{timeout} s")
    values = [ref.result() for ref in refs]
    return values[0] if single else values


def wait(object_refs, *, num_returns: int = 1, timeout: float | None = None,
         fetch_local: bool = True) -> tuple[list, list]:
    """Wait until `num_returns` refs are done or `timeout` seconds pass; return
    ``(ready, not_ready)``, each in the order given, `ready` at most `num_returns` long (Ray's
    semantics). Done includes failed. `fetch_local` is accepted for Ray's signature: nothing
    is downloaded before `lf.get`."""
    refs = _ref_list(object_refs, "lf.wait")
    if len({id(ref) for ref in refs}) != len(refs):
        raise ValueError("lf.wait requires a list of unique refs")
    if not isinstance(num_returns, int) or not 1 <= num_returns <= max(1, len(refs)):
        raise ValueError(f"num_returns={num_returns!r} must be between 1 and the number of "
                         f"refs ({len(refs)})")
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout={timeout!r} must be >= 0 or None")
    deadline = None if timeout is None else time.monotonic() + timeout
    with _session().blocked() if not _enough_done(refs, num_returns) else _nothing():
        while not _enough_done(refs, num_returns):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            pending = [ref for ref in refs if not ref.done()]
            concurrent.futures.wait(pending, timeout=left,
                                    return_when=concurrent.futures.FIRST_COMPLETED)
    ready = [ref for ref in refs if ref.done()][:num_returns]
    chosen = {id(ref) for ref in ready}
    return ready, [ref for ref in refs if id(ref) not in chosen]


def _enough_done(refs, n: int) -> bool:
    return sum(ref.done() for ref in refs) >= min(n, len(refs))


@contextlib.contextmanager
def _nothing():
    yield


def cancel(object_ref, *, force: bool = False, recursive: bool = True) -> bool:
    """Cancel a task that has not started; the tasks depending on it that have not started are
    cancelled with it. A running task runs to its end (a Lambda invocation cannot be stopped):
    then this returns False. `recursive` is accepted for Ray's signature: the cascade always
    follows the refs passed between tasks."""
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(f"lf.cancel takes an ObjectRef, not {type(object_ref).__name__}")
    if force:
        raise ValueError("force=True is not supported: a running task cannot be stopped from "
                         "outside (on Lambda, an invocation runs to its end)")
    return object_ref.cancel()


def _ref_list(object_refs, what: str) -> list:
    if not isinstance(object_refs, (list, tuple)):
        raise TypeError(f"{what} takes an ObjectRef or a list of ObjectRefs, not "
                        f"{type(object_refs).__name__}")
    refs = list(object_refs)
    for ref in refs:
        if not isinstance(ref, ObjectRef):
            raise TypeError(f"{what} takes ObjectRefs; the list holds a "
                            f"{type(ref).__name__}: {ref!r:.80}")
    return refs
