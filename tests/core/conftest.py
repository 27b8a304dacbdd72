import pytest

from lambdaflow import LambdaExecutor


@pytest.fixture
def executor():
    with LambdaExecutor(2) as ex:
        yield ex
