"""Task graphs: a remote call waits for the refs it depends on, then goes to the executor.

    f.remote(a, [b])          a: top-level ref  -> resolved to its value on the worker
        │                     b: ref in a container -> passed as a ref (Ray's rule)
        ▼
    ObjectRef ── every dependency done? ──▶ executor._submit_into(ref, task, (id, layout, …))
        ▲        (callbacks; no thread       │  task = run_task(fn, ctx, …) on the worker:
        │         and no worker waits)       │  decode args, run, encode the result
        └── the executor settles the ref itself: pickle bytes | StoredObject | exception

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
from concurrent.futures import InvalidStateError

from lambdaflow.agent import wire
from lambdaflow.errors import SerializationError
from lambdaflow.objects import InlineValue, ObjectRef, StoredObject, encode, find_refs


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

    def task(key, layout, *values):
        return run_task(fn, ctx, key, layout, values)

    task.__qualname__ = task.__name__ = f"remote:{getattr(fn, '__qualname__', 'task')}"
    return task


# How a call travels: task(ref id, layout, *values), one value per argument, positional ones
# first. `layout` has a letter per value — "e": the pickle of an inline ref's value (bytes),
# "v": the value itself (a StoredObject is read from storage) — then "|" and the keyword
# names. So a call on refs and plain scalars is a tuple of str, bytes and numbers, which the
# executor pickles with the standard pickler, and a task's inline result comes back as the
# bytes of its pickle: nothing is unpickled and pickled again on its way to the next task.

def pack(args: tuple, kwargs: dict) -> tuple[str, tuple]:
    """The (layout, values) of a call whose top-level refs are done."""
    letters, values = [], []
    for value in (*args, *kwargs.values()):
        if isinstance(value, ObjectRef):
            value = value._encoded()
            if type(value) is InlineValue:
                letters.append("e")
                values.append(value.data)
                continue
        letters.append("v")
        values.append(value)
    return "".join(letters) + ("|" + ",".join(kwargs) if kwargs else ""), tuple(values)


def run_task(fn, ctx: TaskContext, key: str, layout: str, values: tuple):
    """On the worker: decode the arguments, run `fn`, encode its result (stored when big):
    the bytes of its pickle, or a StoredObject."""
    from lambdaflow import session

    letters, _, names = layout.partition("|")
    loads = wire.serializer_module(ctx.serializer).loads
    values = [loads(v) if letter == "e" else v.decode() if type(v) is StoredObject else v
              for letter, v in zip(letters, values)]
    count = len(values) - (len(names.split(",")) if names else 0)
    kwargs = dict(zip(names.split(","), values[count:])) if names else {}
    token = session.task_started(ctx)
    try:
        value = fn(*values[:count], **kwargs)
    finally:
        session.task_ended(token)
    url = None if ctx.objects_prefix is None else f"{ctx.objects_prefix}/{key}"
    encoded = encode(value, ctx.serializer, store_over=ctx.store_over, url=url)
    return encoded.data if type(encoded) is InlineValue else encoded


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
    """Schedule a call whose result is `ref`; `submit(ref, layout, values)` hands it to an
    executor, which settles `ref` itself.

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
    _fail(ref, exc)
    return True


def _fail(ref: ObjectRef, exc: BaseException) -> None:
    try:
        ref.set_exception(exc)
    except InvalidStateError:
        pass  # cancelled meanwhile


def _launch(ref, submit, args, kwargs, deps, top, *, immediate: bool) -> None:
    for dep in top:
        if _fail_from(ref, dep):
            return
    if ref.done():
        return  # cancelled while it waited
    layout, values = pack(args, kwargs)
    try:
        submit(ref, layout, values)
    except BaseException as exc:
        if immediate:
            raise
        _fail(ref, exc)
        return
    if deps:
        # Until the task is over its dependencies stay referenced, so a stored one is deleted
        # only once no pending task needs it; then they are let go.
        ref._deps = deps
        ref.add_done_callback(_let_go)


def _let_go(ref: ObjectRef) -> None:
    ref._deps = None
