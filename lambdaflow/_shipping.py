"""Decide how a callable's module travels to workers.

cloudpickle ships functions by reference (module + name) unless they live in `__main__`. A
worker on Lambda can import only what its zip holds, so functions from the user's own modules —
anything that is neither the standard library, an installed package nor lambdaflow — are
registered to travel by value. Round trips keep class identity on the client: cloudpickle
tracks the classes it shipped by value and maps them back when results return.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig

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
