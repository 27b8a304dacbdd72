"""Object references: the futures of Ray-style tasks, and where their values live.

    ObjectRef (a concurrent.futures.Future) settles with an *encoded* value:
      InlineValue(pickle)        small: came back in the task's response (or lf.put kept it)
      StoredObject(url, size)    big: the bytes stay in storage; a worker handed the ref reads
                                 them there, this process only on `result()` / `lf.get`
    result() decodes (reads storage if needed, unpickles) on first use and keeps the value.

Passing a done ref to a task passes the encoded form, never the decoded value: a stored object
travels as its URL, an inline one as the pickle the worker sent, unpickled once, where it is
used. `ObjectStore` is this process's side of stored objects: writing them (named by content
for `lf.put`, by ref id for results), reading them through a bounded cache keyed by URL (a URL
names immutable bytes), counting the bytes read, and deleting an object once the last ref to
it is gone.

Every stored object is signed (`lambdaflow.agent.signing`) with the job key of its session —
one key shared by all of a session's executors and the workers' executors for nested tasks —
and verified before it is unpickled. Inside a task the key is the one its event carried
(`handler.current_job_key()`); in a client, the one its session set with `use_key`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import queue
import threading
from concurrent.futures import Future

from lambdaflow.agent import wire
from lambdaflow.errors import LambdaflowError, SerializationError

#: Bytes of stored objects a process keeps in memory after reading them (warm workers reuse
#: what they read: 20 tasks on one worker sharing an `lf.put` object read it once).
CACHE_BYTES = 512 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class InlineValue:
    """A value pickled by the process that made it, carried inline."""

    data: bytes
    serializer: str = "cloudpickle"

    def decode(self):
        return _loads(self.serializer, self.data, "an inline object")


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """A pickled value left in storage at `url` (`size` bytes)."""

    url: str
    size: int
    serializer: str = "cloudpickle"

    def decode(self):
        return _loads(self.serializer, store().read(self.url, job_key()), self.url)


def _loads(serializer: str, data: bytes, what: str):
    try:
        return wire.serializer_module(serializer).loads(data)
    except Exception as exc:
        raise SerializationError(f"{what} did not unpickle here: {type(exc).__name__}: "
                                 f"{exc}") from exc


def encode(value, serializer: str, *, store_over: float, url: str | None):
    """`value` as an InlineValue, or — when its pickle is over `store_over` bytes and `url` is
    given — written to storage at `url` and returned as a StoredObject."""
    data = wire.dumps(wire.serializer_module(serializer), value)
    if url is not None and len(data) > store_over:
        return store().write(url, data, serializer, job_key())
    return InlineValue(data, serializer)


_session_key = None


def use_key(key) -> None:
    """Sign and verify this client's stored objects with `key` (its session's job key)."""
    global _session_key
    _session_key = key


def job_key():
    """The key stored objects are signed with here: the running task's, else the session's."""
    from lambdaflow.agent.handler import current_job_key

    key = current_job_key() or _session_key
    if key is None:
        raise LambdaflowError("stored objects are read and written inside a task or an "
                              "lf session (lf.init); this one has ended")
    return key


class RefNotShipped(LambdaflowError):
    """A ref was pickled before it was done, so the copy cannot know its value."""


_NOT_DECODED = object()


class ObjectRef(Future):
    """The future result of a remote call (or an `lf.put`).

    A real `concurrent.futures.Future` — the very future the executor settles — so
    `concurrent.futures.wait`, `as_completed` and `asyncio.wrap_future` work on it, and so does
    ``await ref``; `id` names it, `stats` is the task's `TaskStats` once submitted. `result()`
    returns the value (a stored one is read from storage on first use, then kept).
    `cancel()` cancels a task that has not started, and with it every task waiting for it.

    A task's ref settles with what the task's wrapper returned: the bytes of the value's pickle
    (small values) or a `StoredObject`; it is decoded only when asked for.
    """

    def __init__(self, ref_id: str, serializer: str = "cloudpickle", *, owner: bool = True):
        super().__init__()
        self.id = ref_id
        self._serializer = serializer
        self._owner = owner  # deletes its stored object when it goes (copies in workers don't)
        self._decoded = _NOT_DECODED
        self._deps = None  # what the task needs until it is over (lambdaflow.graph)

    def __repr__(self) -> str:
        return f"ObjectRef({self.id})"

    def __await__(self):
        import asyncio

        return asyncio.wrap_future(self).__await__()

    def __reduce__(self):
        # A ref inside a task's arguments travels as a ref: the scheduler waited for it, so the
        # copy carries its outcome (the encoded value, never the decoded one).
        collector = _collector.refs
        if collector is not None:
            collector.append(self)
        if not self.done():
            return _rebuild, (self.id, "pending", None)
        if self.cancelled():
            return _rebuild, (self.id, "cancelled", None)
        exc = self.exception()
        if exc is not None:
            return _rebuild, (self.id, "error", exc)
        return _rebuild, (self.id, "value", self._encoded())

    def result(self, timeout=None):
        value = super().result(timeout)
        decoded = self._decoded
        if decoded is _NOT_DECODED:
            # Kept: later gets cost nothing. The encoded form stays the future's result, so
            # passing the ref on to a task still sends a URL (or the worker's pickle).
            decoded = self._decoded = self._encode(value).decode()
        return decoded

    def _encoded(self):
        """The settled value as it travels to a task: an InlineValue or a StoredObject."""
        return self._encode(super().result(0))

    def _encode(self, value):
        return InlineValue(value, self._serializer) if type(value) is bytes else value

    def __del__(self):
        # Dropping the last reference deletes a stored result (not in a worker's copy). A
        # pending task that needs it holds a reference until it is over (lambdaflow.graph).
        if self._owner and self._state == "FINISHED" and type(self._result) is StoredObject:
            try:
                store().release(self._result.url)
            except Exception:  # noqa: BLE001 — interpreter shutdown: the prefix goes anyway
                pass


def _rebuild(ref_id: str, state: str, payload):
    ref = ObjectRef(ref_id, owner=False)
    if state == "value":
        ref.set_result(payload)
    elif state == "error":
        ref.set_exception(payload)
    elif state == "cancelled":
        ref.cancel()
    else:
        ref.set_exception(RefNotShipped(
            f"{ref_id} was not done when it was pickled, so this copy cannot know its value; "
            f"pass refs to tasks through f.remote(), which waits for them"))
    return ref


class _Collector(threading.local):
    refs: list | None = None


_collector = _Collector()


def find_refs(obj, serializer: str) -> list[ObjectRef]:
    """Refs anywhere inside `obj` (containers, attributes…), found by pickling it — which also
    proves it pickles. Raises what the pickler raises."""
    _collector.refs = found = []
    try:
        wire.serializer_module(serializer).dumps(obj)
    finally:
        _collector.refs = None
    return found


class _ReadCache:
    """Bytes read from storage, by URL, least recently used evicted past `limit` bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, url: str) -> bytes | None:
        with self._lock:
            data = self._items.get(url)
            if data is not None:
                self._items.move_to_end(url)
            return data

    def add(self, url: str, data: bytes) -> None:
        if len(data) > self.limit:
            return
        with self._lock:
            if url in self._items:
                return
            self._items[url] = data
            self._size += len(data)
            while self._size > self.limit:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)

    def discard(self, url: str) -> None:
        with self._lock:
            data = self._items.pop(url, None)
            if data is not None:
                self._size -= len(data)


class _Shared:
    """An object `lf.put` stored, shared by every ref to equal content."""

    def __init__(self, url: str, digest: tuple):
        self.url = url
        self.digest = digest
        self.refs = 0
        self.uploaded = threading.Event()
        self.failure: BaseException | None = None


class ObjectStore:
    """This process's side of stored objects (one per process: `store()`).

    `bytes_read` / `bytes_written` count what this process moved to and from storage for
    objects — what `bench/tasks.py` reports as the bytes that passed through the client.
    """

    def __init__(self, cache_bytes: int = CACHE_BYTES):
        self._cache = _ReadCache(cache_bytes)
        self._shared: dict[str, _Shared] = {}  # URL of a live put -> its sharing
        self._by_digest: dict[tuple, _Shared] = {}  # (prefix, content digest) -> the same
        self._generation = 0
        self._lock = threading.Lock()
        self._doomed: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._delete_loop, name="lambdaflow-objects-delete",
                         daemon=True).start()
        self.bytes_read = 0
        self.bytes_written = 0
        self.puts = 0

    def write(self, url: str, data: bytes, serializer: str, key) -> StoredObject:
        key.put(url, data)
        with self._lock:
            self.bytes_written += len(data)
            self.puts += 1
        return StoredObject(url, len(data), serializer)

    def read(self, url: str, key) -> bytes:
        """The verified payload at `url` (cached: what is cached was verified)."""
        data = self._cache.get(url)
        if data is None:
            data = key.get(url)
            with self._lock:
                self.bytes_read += len(data)
            self._cache.add(url, data)
        return data

    def put(self, value, serializer: str, prefix: str, key) -> StoredObject:
        """Store `value` under `prefix`, named by its content: an equal object put again while
        a ref to the first is alive is uploaded once and shared; `release` deletes it after
        its last ref. (Once deleted, the same content gets a new name: a delete still queued
        must not remove a new upload.)"""
        data = wire.dumps(wire.serializer_module(serializer), value)
        digest = (prefix, hashlib.sha256(data).hexdigest()[:40])
        with self._lock:
            shared = self._by_digest.get(digest)
            upload = shared is None
            if upload:
                self._generation += 1
                shared = _Shared(f"{prefix}/put-{digest[1]}-{self._generation}", digest)
                self._by_digest[digest] = self._shared[shared.url] = shared
            shared.refs += 1
        if upload:
            try:
                self.write(shared.url, data, serializer, key)
            except BaseException as exc:  # noqa: BLE001 — re-raised below, in every putter
                shared.failure = exc
            shared.uploaded.set()
        else:
            shared.uploaded.wait()  # another thread is uploading the same bytes
        if shared.failure is not None:
            self._unshare(shared.url)
            raise shared.failure
        return StoredObject(shared.url, len(data), serializer)

    def release(self, url: str) -> None:
        """The ref owning `url` is gone: delete the object (for a shared put, once its last
        ref is gone).

        Called from `ObjectRef.__del__`, so in whatever thread dropped the ref — perhaps in
        the middle of this store's own locked code, when the cyclic GC runs there. So it takes
        no lock: `SimpleQueue.put` is reentrant, and the deleter thread (started with the
        store) does the rest, including the network call a delete is on S3.
        """
        self._doomed.put(url)

    def forget_all(self) -> None:
        """Shutdown deletes the whole prefix; stop tracking what was under it."""
        with self._lock:
            self._shared.clear()
            self._by_digest.clear()

    def _unshare(self, url: str) -> bool:
        """One owner less; whether the object is now free to delete (a task's result has one
        owner, a put as many as refs to its content)."""
        with self._lock:
            shared = self._shared.get(url)
            if shared is not None:
                shared.refs -= 1
                if shared.refs > 0:
                    return False
                del self._shared[url]
                if self._by_digest.get(shared.digest) is shared:
                    del self._by_digest[shared.digest]
        self._cache.discard(url)
        return True

    def _delete_loop(self) -> None:
        from lambdaflow import storage

        while True:
            url = self._doomed.get()
            if isinstance(url, _Marker):
                url.event.set()
                continue
            if not self._unshare(url):
                continue
            try:
                storage.delete(url)
            except OSError:
                pass  # its job prefix is deleted at shutdown anyway

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until deletes handed over so far are done (tests, shutdown)."""
        done = threading.Event()
        self._doomed.put(_Marker(done))
        done.wait(timeout)


class _Marker(str):
    """Queued behind pending deletes; `drain` waits for the deleter to reach it."""

    def __new__(cls, event: threading.Event):
        self = super().__new__(cls, "")
        self.event = event
        return self


_store: ObjectStore | None = None
_store_lock = threading.Lock()


def store() -> ObjectStore:
    """This process's object store."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                _store = ObjectStore()
    return _store
