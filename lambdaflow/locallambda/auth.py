"""Who may call the endpoint: SigV4 signatures checked against the keys it knows.

Lambda authenticates every REST call with a Signature Version 4 signature; boto3 and the AWS
CLI sign every request already. local-lambda checks them the same way, so that another user
of this machine, who can connect to 127.0.0.1 but does not hold the credentials the server was
started with, can neither create nor invoke functions (before this check, any local user could
deploy a function that runs as the server's user and read its secrets).

The signature is recomputed with botocore's own `SigV4Auth` — the signer the clients use —
over the request exactly as received: method, raw path and query, the headers the client says
it signed (``SignedHeaders``), the SHA-256 of the body, and the client's ``X-Amz-Date``. The
credential scope must name this endpoint's region and the ``lambda`` service, and the date
must be within AWS's 15 minutes of now.

Keys known to the keyring: the server's own credentials (`server`), and the temporary
credentials handed to sandboxes for their function's role (`issue`/`revoke`), so that code
running in a function can invoke other functions through this endpoint as the role — as on
Lambda, where a handler's boto3 signs with the role's session credentials.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

from lambdaflow.locallambda.apierror import ApiError

MAX_SKEW = datetime.timedelta(minutes=15)   # AWS refuses signatures older or newer than this
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$")


@dataclass(frozen=True)
class Credentials:
    """A key pair the endpoint accepts, and whose it is (``server`` or a role ARN)."""

    access_key: str
    secret_key: str
    token: str | None
    principal: str

    def __repr__(self) -> str:  # never show the secret in a log or a traceback
        return f"Credentials(access_key={self.access_key!r}, principal={self.principal!r})"


def _denied(code: str, message: str) -> ApiError:
    return ApiError(403, code, message)


class Keyring:
    """The credentials the endpoint accepts. Thread-safe."""

    def __init__(self, server: Credentials, region: str):
        self.server = server
        self.region = region
        self._keys = {server.access_key: server}
        self._lock = threading.Lock()

    def issue(self, role_arn: str) -> Credentials:
        """Fresh temporary credentials for `role_arn` (for one sandbox; `revoke` them after).

        Offline stand-ins for the role's STS session: the access key starts with ``ASIA`` like
        STS keys, and the session token names the role, so whoever receives a request signed
        with them (moto's S3, a test) can tell which role made it.
        """
        access_key = "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()
        token = "lambdaflow-role:" + role_arn + ":" + secrets.token_urlsafe(24)
        credentials = Credentials(access_key, secrets.token_urlsafe(30), token, role_arn)
        with self._lock:
            self._keys[access_key] = credentials
        return credentials

    def revoke(self, credentials: Credentials) -> None:
        with self._lock:
            self._keys.pop(credentials.access_key, None)

    def verify(self, method: str, path: str, headers, body: bytes,
               now: datetime.datetime | None = None) -> Credentials:
        """Check a request's SigV4 signature; return whose credentials signed it.

        `path` is the request target as received (path and query string, still
        percent-encoded); `headers` an ``email.message.Message`` (http.server's). Raises
        `ApiError` 403 with Lambda's error codes when the request is not properly signed.
        """
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        authorization = headers.get("Authorization")
        if not authorization:
            raise _denied("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTHORIZATION.match(authorization.strip())
        if not match:
            raise _denied("IncompleteSignatureException",
                          "Authorization header is not a valid AWS4-HMAC-SHA256 signature")
        with self._lock:
            credentials = self._keys.get(match["key"])
        if credentials is None:
            raise _denied("UnrecognizedClientException",
                          "The security token included in the request is invalid.")
        if match["region"] != self.region or match["service"] != "lambda":
            raise _denied("InvalidSignatureException",
                          f"Credential should be scoped to a valid region and service: "
                          f"this endpoint is {self.region}/lambda, the request was signed "
                          f"for {match['region']}/{match['service']}")
        stamp = headers.get("X-Amz-Date") or ""
        try:
            signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise _denied("IncompleteSignatureException",
                          "X-Amz-Date must be given as YYYYMMDD'T'HHMMSS'Z'") from None
        now = now or datetime.datetime.now(datetime.timezone.utc)
        if abs(now - signed_at) > MAX_SKEW or stamp[:8] != match["date"]:
            raise _denied("InvalidSignatureException",
                          f"Signature expired: {stamp} is not within 15 minutes of "
                          f"{now:%Y%m%dT%H%M%SZ}")
        signed = match["signed"].split(";")
        if "host" not in signed:
            raise _denied("IncompleteSignatureException", "the Host header must be signed")
        if credentials.token is not None and not hmac.compare_digest(
                (headers.get("X-Amz-Security-Token") or "").encode(), credentials.token.encode()):
            raise _denied("UnrecognizedClientException",
                          "The security token included in the request is invalid.")

        request = AWSRequest(method=method, url=f"http://{headers.get('Host', '')}{path}",
                             headers={k: v for k, v in headers.items()
                                      if k.lower() in signed}, data=body)
        request.context["timestamp"] = stamp
        signer = _signer(BotoCredentials(credentials.access_key, credentials.secret_key,
                                           credentials.token), self.region, signed)
        declared = request.headers.get("X-Amz-Content-SHA256")
        if declared is not None and declared != hashlib.sha256(body).hexdigest():
            raise _denied("InvalidSignatureException", "the body does not match its signature")
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, match["signature"]):
            raise _denied("InvalidSignatureException",
                          "The request signature we calculated does not match the signature "
                          "you provided. Check your AWS Secret Access Key and signing method.")
        return credentials


def _signer(credentials, region: str, signed: list[str]):
    """botocore's SigV4Auth, restricted to the headers the client signed."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import HTTPHeaders

    class Resigner(SigV4Auth):
        def headers_to_sign(self, request):
            chosen = HTTPHeaders()
            for name, value in request.headers.items():
                if name.lower() in signed:
                    chosen[name.lower()] = value
            return chosen

    return Resigner(credentials, "lambda", region)


def server_credentials(access_key: str | None = None,
                       secret_key: str | None = None) -> Credentials:
    """The endpoint's own key pair: given, or boto3's (environment, profile, ...)."""
    from lambdaflow.errors import ConfigError

    if access_key and secret_key:
        return Credentials(access_key, secret_key, None, "server")
    import botocore.session

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise ConfigError(
            "local-lambda checks every request's AWS signature against the credentials it is "
            "started with, and found none: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(any values, e.g. 'testing') for the server and its clients")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token, "server")
