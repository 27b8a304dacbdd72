"""The one error the Lambda REST API answers with: an HTTP status and Lambda's error code."""

from __future__ import annotations

from lambdaflow.errors import LambdaflowError


class ApiError(LambdaflowError):
    """A request the endpoint refuses, answered as Lambda does.

    botocore reads the code from the ``x-amzn-ErrorType`` header and the message from the
    body's ``message``, so boto3 raises ``client.exceptions.<code>`` with this message.
    `extra` adds fields to the body (``Reason`` of a 429, for instance).
    """

    def __init__(self, status: int, code: str, message: str, **extra: object):
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        super().__init__(f"{status} {code}: {message}")


def not_found(kind: str, arn: str) -> ApiError:
    return ApiError(404, "ResourceNotFoundException", f"{kind} not found: {arn}")


def invalid(message: str) -> ApiError:
    return ApiError(400, "InvalidParameterValueException", message)


def validation_error(value: object, field: str, constraint: str) -> ApiError:
    """What Lambda's request validation answers: ``1 validation error detected: Value 'V' at
    'FIELD' failed to satisfy constraint: CONSTRAINT``."""
    return ApiError(400, "ValidationException",
                    f"1 validation error detected: Value '{value}' at '{field}' failed to "
                    f"satisfy constraint: {constraint}")
