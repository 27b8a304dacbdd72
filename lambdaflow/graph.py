"""Task graphs: a remote call waits for the refs it depends on, then goes to the executor.

    f.remote(a, [b])          a: top-level ref  -> resolved to its value on the worker
        │                     b: ref in a container -> passed as a ref (Ray's rule)
        ▼
    ObjectRef ── every dependency done? ──▶ executor.submit(task, ref id, args, kwargs)
        ▲        (callbacks; no thread       │  task = run_task(fn, ctx, …) on the worker:
        │         and no worker waits)       │  decode args, run, encode the result
        └── settle: InlineValue | StoredObject | exception ◀┘

A failed top-level dependency fails the call with the same exception without running it; a
cancelled one cancels it (and so on down the graph). A ref inside a container is waited for
too — a copy shipped to a worker must carry its outcome, since a worker cannot ask this process
— but its failure is the task's to see, through `lf.get`, as in Ray.

Cascades (a chain of 100 refs failing at its head) run from a per-thread work list rather than
by recursion, so a long chain cannot exhaust the stack.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import Future

from lambdaflow.errors import SerializationError
from lambdaflow.objects import (InlineValue, ObjectRef, StoredObject, encode, find_refs,
                                store)


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """What a task's worker needs to run it and to start nested tasks (travels with the task).

    kind ``"local"``: nested tasks go to the client through the socket at `parent`;
    ``"aws"``: the worker invokes `function` itself. `key` is the remote options the task runs
    under; `objects_prefix` where a result over `store_over` bytes stays; `spill_root` where
    the worker's own executor for nested tasks keeps its spill (None: no storage).
    """

    kind: str
    parent: str | None
    function: str | None
    key: tuple
    objects_prefix: str | None
    spill_root: str | None
    store_over: float
    serializer: str
    inline_limit: int


def make_task(fn, ctx: TaskContext):
    """The callable the executor ships for calls of `fn` under `ctx`: a plain function, so the
    executor pickles it once, like any function."""

    def task(key, args, kwargs):
        return run_task(fn, ctx, key, args, kwargs)

    task.__qualname__ = task.__name__ = f"remote:{getattr(fn, '__qualname__', 'task')}"
    return task


def run_task(fn, ctx: TaskContext, key: str, args: tuple, kwargs: dict):
    """On the worker: decode the arguments, run `fn`, encode its result (stored when big)."""
    from lambdaflow import session

    args = tuple(_decode(value) for value in args)
    kwargs = {name: _decode(value) for name, value in kwargs.items()}
    with session.running_task(ctx):
        value = fn(*args, **kwargs)
    url = None if ctx.objects_prefix is None else f"{ctx.objects_prefix}/{key}"
    return encode(value, ctx.serializer, store_over=ctx.store_over, url=url)


def _decode(value):
    return value.decode() if type(value) in (InlineValue, StoredObject) else value


class _Trampoline(threading.local):
    queue: list | None = None


_trampoline = _Trampoline()


def _later(work) -> None:
    """Run `work()` now, or after the work already running in this thread (no recursion)."""
    if _trampoline.queue is not None:
        _trampoline.queue.append(work)
        return
    _trampoline.queue = pending = [work]
    try:
        while pending:
            pending.pop(0)()
    finally:
        _trampoline.queue = None


_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})


def call(ref: ObjectRef, submit, args: tuple, kwargs: dict, serializer: str) -> ObjectRef:
    """Schedule a call whose result is `ref`; `submit(args, kwargs)` hands it to an executor.

    Raises at once what cannot work: an argument that does not pickle (the executor would say
    so only when the dependencies are done, perhaps much later).
    """
    values = (*args, *kwargs.values())
    top = [value for value in values if isinstance(value, ObjectRef)]
    deps = list(top)
    for value in values:
        if type(value) not in _PLAIN and not isinstance(value, ObjectRef):
            try:
                deps += find_refs(value, serializer)
            except Exception as exc:
                raise SerializationError(f"an argument of {ref.id} cannot be pickled: "
                                         f"{type(exc).__name__}: {exc}") from exc
    waiting = {id(dep): dep for dep in deps if not dep.done()}
    if not waiting:
        _launch(ref, submit, args, kwargs, deps, top, immediate=True)
        return ref
    # Callbacks stay in a done future's list for its lifetime, so they reach the call only
    # through `state`, emptied once the call is launched or failed: a long-lived dependency
    # (an lf.put object used by many tasks) must not keep its dependents' results alive.
    state = {"ref": ref, "launch": (submit, args, kwargs, deps, top),
             "remaining": len(waiting), "top": {id(dep) for dep in top}}
    lock = threading.Lock()

    def on_done(dep):
        with lock:
            if "ref" not in state:
                return
            state["remaining"] -= 1
            failed = id(dep) in state["top"] and (dep.cancelled() or dep.exception() is not None)
            if not failed and state["remaining"]:
                return
            target, launch = state.pop("ref"), state.pop("launch")
        if failed:
            _later(lambda: _fail_from(target, dep))  # no need to wait for the others
        else:
            _later(lambda: _launch(target, *launch, immediate=False))

    for dep in waiting.values():
        dep.add_done_callback(on_done)
    return ref


def _fail_from(ref: ObjectRef, dep: ObjectRef) -> bool:
    """Settle `ref` as its failed or cancelled dependency `dep` did; False if `dep` is fine."""
    if dep.cancelled():
        ref.cancel()
        return True
    exc = dep.exception()
    if exc is None:
        return False
    with ref._sched_lock:
        if ref.done():
            return True
        ref.set_exception(exc)
    return True


def _launch(ref, submit, args, kwargs, deps, top, *, immediate: bool) -> None:
    for dep in top:
        if _fail_from(ref, dep):
            return
    args = tuple(v._encoded() if isinstance(v, ObjectRef) else v for v in args)
    kwargs = {k: v._encoded() if isinstance(v, ObjectRef) else v for k, v in kwargs.items()}
    with ref._sched_lock:
        if ref.done():
            return  # cancelled while it waited
        try:
            inner = submit(args, kwargs)
        except BaseException as exc:
            if immediate:
                raise
            failure = exc
        else:
            ref._inner = inner
            failure = None
    if failure is not None:
        ref.set_exception(failure)
        return
    # `deps` stays referenced until the task is over: a stored dependency is deleted only when
    # no pending task needs it. Like `state` above, `held` is emptied once used: dispatcher
    # threads keep their last work item (and so this callback) for a while.
    held = [ref, deps]
    inner.add_done_callback(lambda done: _later(lambda: _settle(held, done)))


def _settle(held: list, inner) -> None:
    ref = held[0]
    held.clear()
    try:
        if inner.cancelled():
            # Future.cancel, not ref.cancel: ref.cancel() may be the caller, holding its lock.
            Future.cancel(ref)
        elif (exc := inner.exception()) is not None:
            ref.set_exception(exc)
        else:
            value = inner.result()
            if isinstance(value, StoredObject):
                store().own(ref, value)
            ref.set_result(value)
    finally:
        ref._inner = None  # after settling: until then ref.cancel() must ask the executor
