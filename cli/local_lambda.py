"""`lambdaflow local-lambda`: serve the Lambda-compatible endpoint until interrupted.

The first line of stdout is the endpoint URL (scripts read it to set
``AWS_ENDPOINT_URL_LAMBDA``); the server stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "local-lambda", help="serve a Lambda-compatible endpoint that runs zips locally",
        description="Serve Lambda's REST API on HOST:PORT and run each function's zip in "
                    "local awslambdaric sandboxes. Point boto3 at it with "
                    "AWS_ENDPOINT_URL_LAMBDA=<printed URL>. Every request must be SigV4-signed "
                    "with the credentials this command finds as boto3 does (AWS_ACCESS_KEY_ID "
                    "and AWS_SECRET_ACCESS_KEY, a profile...); clients sign with the same ones.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; the endpoint runs "
                             "any code it is sent, so keep it on loopback)")
    parser.add_argument("--port", type=int, default=0,
                        help="port to listen on (default: a free ephemeral port)")
    parser.add_argument("--concurrency", type=int, default=1000,
                        help="account concurrency limit (default 1000)")
    parser.add_argument("--region", default=None,
                        help="region in ARNs and sandboxes (default AWS_REGION or us-east-1)")
    parser.add_argument("--runtime-dir", default=None,
                        help="directory holding awslambdaric and boto3 for the sandboxes "
                             "(default: built once from this environment, cached)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lambdaflow.locallambda import LocalLambda

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"lambdaflow local-lambda: warning: listening on {args.host}: anyone who can "
              f"reach it can run code on this machine", file=sys.stderr)
    stop = threading.Event()
    # SIGTERM ends the server like Ctrl-C does, so supervisors get a clean shutdown.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    endpoint = LocalLambda(args.host, args.port, concurrency=args.concurrency,
                           region=args.region, runtime_dir=args.runtime_dir)
    with endpoint:
        print(endpoint.url, flush=True)
        print(f"lambdaflow local-lambda: serving; export AWS_ENDPOINT_URL_LAMBDA={endpoint.url}",
              file=sys.stderr, flush=True)
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
    return 0
