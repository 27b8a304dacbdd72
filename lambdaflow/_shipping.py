"""Decide how a callable's module travels to workers.

cloudpickle ships functions by reference (module + name) unless they live in `__main__`. A
worker on Lambda can import only what its zip holds, so functions from the user's own modules —
anything that is neither the standard library, an installed package nor lambdaflow — are
registered to travel by value. Round trips keep class identity on the client: cloudpickle
tracks the classes it shipped by value and maps them back when results return.
"""

from __future__ import annotations

import inspect
import io
import os
import pickle
import site
import sys
import sysconfig
import types
from collections import ChainMap

import cloudpickle

_decided: dict[str, bool] = {}


def register_user_modules(fn) -> None:
    """Register the module defining `fn` to be pickled by value if it is the user's own code."""
    target = getattr(fn, "func", fn)  # functools.partial
    name = getattr(target, "__module__", None) or type(target).__module__
    if name in _decided:
        return
    module = sys.modules.get(name)
    by_value = module is not None and _is_user_module(module)
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    _decided[name] = by_value


def _is_user_module(module) -> bool:
    path = getattr(module, "__file__", None)
    if not path or module.__name__ == "__main__" or module.__name__.split(".")[0] == "lambdaflow":
        return False
    path = os.path.realpath(path)
    return not any(path.startswith(root + os.sep) for root in _installed_roots())


def _installed_roots() -> list[str]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots.update(site.getsitepackages())
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        roots.add(site.getusersitepackages())
    roots.update(p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages"))
    return [os.path.realpath(r) for r in roots]


def source_files(fn) -> dict[str, dict[int, str]]:
    """{file name: {line number: line}} of the functions shipped by value (from `__main__` or
    the user's own modules) that the callable `fn` is or wraps, for the worker's `linecache`:
    there the file may not exist (on Lambda), so remote tracebacks would show no source lines.
    Only each function's own lines: the text travels in every task's event."""
    files: dict[str, dict[int, str]] = {}
    targets = [fn, getattr(fn, "func", None), *getattr(fn, "args", ())[:1]]  # partial(run, f)
    for target in targets:
        name = getattr(target, "__module__", None)
        if not isinstance(target, types.FunctionType) or not (
                name == "__main__" or _decided.get(name)):
            continue
        filename = target.__code__.co_filename
        try:
            lines, first = inspect.getsourcelines(target)
        except (OSError, TypeError):
            continue  # no source to be had (typed at a prompt, or the file is gone)
        numbered = files.setdefault(filename, {})
        numbered.update(enumerate(lines, start=max(first, 1)))
    return files


def _code_reduce_keeping_filename(code: types.CodeType):
    # cloudpickle writes "<dynamic-code>" as every by-value function's file name (for
    # deterministic payloads); keep the real one, so the worker's traceback can name the file
    # and find its lines in the sources shipped alongside (`source_files`).
    constructor, args = cloudpickle.cloudpickle._code_reduce(code)
    args = tuple(code.co_filename if arg == "<dynamic-code>" else arg for arg in args)
    return constructor, args


class _FilenamePickler(cloudpickle.Pickler):
    dispatch_table = ChainMap({types.CodeType: _code_reduce_keeping_filename},
                              cloudpickle.Pickler.dispatch_table)


def dumps_keeping_filenames(obj) -> bytes:
    """cloudpickle.dumps, except that functions shipped by value keep their code's file name."""
    buffer = io.BytesIO()
    _FilenamePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()
