"""CPython's own executor and pool tests, run unchanged against LambdaExecutor and LambdaPool.

`test_concurrent_futures`' executor test classes run with `LambdaExecutor` as the executor
type, and `_test_multiprocessing`'s `_TestPool` family with `LambdaPool` as the pool; their
assertions are CPython's. The modules are fetched, not vendored (`stdlib_suites.py`). The only
tests skipped are listed in SKIPS, each with its reason.
"""

from __future__ import annotations

import os
import unittest

import pytest

from lambdaflow import LambdaExecutor, LambdaPool

from tests.cpython import stdlib_suites

if os.environ.get("LAMBDAFLOW_SKIP_CPYTHON_SUITES") == "1":
    pytest.skip("LAMBDAFLOW_SKIP_CPYTHON_SUITES=1", allow_module_level=True)

cf = stdlib_suites.load("test_concurrent_futures")
mp_tests = stdlib_suites.load("_test_multiprocessing")

NAMED_IN_SOURCE = ("runs a child interpreter that imports the executor type by name from "
                   "concurrent.futures")

DIFFERS = "lambdaflow differs on purpose (README: Stopping work): "

SKIPS = {
    # test_concurrent_futures
    "ExecutorShutdownTest.test_interpreter_shutdown": NAMED_IN_SOURCE,
    "ExecutorShutdownTest.test_submit_after_interpreter_shutdown": NAMED_IN_SOURCE,
    "ExecutorShutdownTest.test_hang_gh83386": NAMED_IN_SOURCE,
    "ExecutorShutdownTest.test_cancel_futures": DIFFERS + (
        "shutdown(cancel_futures=True) stops running tasks too (their futures end cancelled), "
        "so the test's 'at least one running task finished' cannot hold"),
    # _test_multiprocessing
    "_TestPool.test_make_pool": "counts the workers through the pool's private _pool list",
    "_TestPool.test_map_unplicklable": DIFFERS + (
        "an unpicklable argument raises SerializationError (a TypeError naming the argument) "
        "at submit, with the pickler's RuntimeError as its __cause__"),
    "_TestPool.test_traceback": DIFFERS + (
        "the remote traceback is lambdaflow.errors.RemoteTraceback (same .tb text), and the test "
        "checks the class's identity against multiprocessing.pool.RemoteTraceback"),
    "_TestPool.test_resource_warning": (
        "checks that a pool dropped unclosed emits multiprocessing's ResourceWarning, a "
        "multiprocessing detail lambdaflow does not copy"),
    "_TestPool.test_release_task_refs": DIFFERS + (
        "the objects are released (the weakref half of the test passes), but its counter is a "
        "class attribute of a class shipped by value (the suite module is not an installed "
        "package), and cloudpickle writes the worker's copy of a by-value class's attributes "
        "back onto the caller's class when results come home, so CountedObject.n_instances "
        "ends negative; tests/core's test_a_result_lives_only_as_long_as_the_callers_handle "
        "checks the release itself"),
}


def _skip(cls, base_name: str):
    for key, reason in SKIPS.items():
        owner, _, test = key.partition(".")
        if owner == base_name and hasattr(cls, test):
            setattr(cls, test, unittest.skip(reason)(getattr(cls, test)))
    return cls


class _LambdaExecutorMixin(cf.ExecutorMixin):
    executor_type = LambdaExecutor


def _executor_case(base_name: str, name: str):
    base = getattr(cf, base_name)
    cls = type(name, (base, _LambdaExecutorMixin, cf.BaseTestCase), {})
    return _skip(cls, base_name)


LambdaExecutorTest = _executor_case("ExecutorTest", "LambdaExecutorTest")
LambdaExecutorWaitTest = _executor_case("WaitTests", "LambdaExecutorWaitTest")
LambdaExecutorAsCompletedTest = _executor_case("AsCompletedTests", "LambdaExecutorAsCompletedTest")
LambdaExecutorShutdownTest = _executor_case("ExecutorShutdownTest", "LambdaExecutorShutdownTest")
LambdaExecutorInitializerTest = _executor_case("InitializerMixin", "LambdaExecutorInitializerTest")
LambdaExecutorFailingInitializerTest = _executor_case("FailingInitializerMixin",
                                                      "LambdaExecutorFailingInitializerTest")


class _LambdaPoolMixin(mp_tests.ProcessesMixin):
    Pool = staticmethod(LambdaPool)


def _pool_case(base_name: str, name: str):
    base = getattr(mp_tests, base_name)
    cls = type(name, (base, _LambdaPoolMixin, unittest.TestCase), {})
    return _skip(cls, base_name)


LambdaPoolTest = _pool_case("_TestPool", "LambdaPoolTest")
LambdaPoolWorkerErrorsTest = _pool_case("_TestPoolWorkerErrors", "LambdaPoolWorkerErrorsTest")
LambdaPoolWorkerLifetimeTest = _pool_case("_TestPoolWorkerLifetime", "LambdaPoolWorkerLifetimeTest")
