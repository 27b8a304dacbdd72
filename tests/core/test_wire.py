"""wire.dumps: the standard pickler's fast path for plain values changes no byte on the wire."""

import cloudpickle
import dill
import pytest

from lambdaflow.agent import wire

PLAIN = [0, -7, 10**40, 2.5, float("inf"), "", "text ü", b"\x00bytes", True, False, None,
         ((1, "a", None, 2.0), {}), ((), {})]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_pickle_exactly_as_cloudpickle_does(value):
    assert wire.dumps(cloudpickle, value) == cloudpickle.dumps(value)
    assert dill.loads(wire.dumps(dill, value)) == value


class Custom(int):
    pass


@pytest.mark.parametrize("value", [
    lambda: 1,  # needs cloudpickle
    Custom(3),  # an int subclass is not plain
    ((lambda: 1,), {}),
    ((1,), {"key": 2}),  # keywords take the serializer's path
    [1, 2],
], ids=repr)
def test_anything_else_goes_through_the_serializer(value):
    assert wire.dumps(cloudpickle, value) == cloudpickle.dumps(value)


def test_rebuilt_exceptions_keep_slot_attributes_like_import_errors_name():
    import pickle

    from lambdaflow.errors import MissingModule

    exc = MissingModule("no module named 'lftiny'", task_id="t-7", name="lftiny", log_tail="tail")
    again = pickle.loads(pickle.dumps(exc))
    assert isinstance(again, ModuleNotFoundError)
    assert (again.args, again.name, again.task_id, again.log_tail) == (
        exc.args, "lftiny", "t-7", "tail")
