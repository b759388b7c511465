"""moto's DynamoDB server for the test suite, one request at a time.

moto's own `moto_server` handles requests on parallel threads without a
lock, so two concurrent TransactWriteItems can interleave and both pass a
condition (real DynamoDB applies each request atomically). This launcher
runs the same moto application behind one lock, which restores per-request
atomicity while connections are still served in parallel.

It also counts the items every Query and Scan read (their `ScannedCount`,
what DynamoDB bills a read by), served at GET /__pmcp/items-read, so tests
can tell a bounded query from a table scan.

Usage: python moto_server.py HOST PORT
"""

import json
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
    items_read = [0]

    def serialized(environ, start_response):
        if environ.get("PATH_INFO") == "/__pmcp/items-read":
            body = str(items_read[0]).encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            chunks = list(app(environ, start_response))
            try:
                items_read[0] += int(json.loads(b"".join(chunks)).get("ScannedCount", 0))
            except (ValueError, AttributeError):
                pass
            return chunks

    run_simple(host, port, serialized, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
