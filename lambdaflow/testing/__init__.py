"""Test support for lambdaflow and for users' own tests: real local servers, no mocks.

The pytest plugin (`lambdaflow.testing.plugin`, registered as a pytest11 entry point) provides
fixtures; optional test dependencies (moto, awslambdaric) are imported only inside them.
"""
