"""moto's DynamoDB server for the test suite, one request at a time.

moto's own `moto_server` handles requests on parallel threads without a
lock, so two concurrent TransactWriteItems can interleave and both pass a
condition (real DynamoDB applies each request atomically). This launcher
runs the same moto application behind one lock, which restores per-request
atomicity while connections are still served in parallel.

Usage: python moto_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialized(environ, start_response):
        with lock:
            return list(app(environ, start_response))

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
