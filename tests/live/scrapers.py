"""Scrapers of a /metrics endpoint, run inside a lab namespace (stdlib only).

    scrapers.py PORT MODE SECONDS

MODE `steady`: one GET a second, as a Prometheus would. MODE `hostile`: at once, a
client that connects and never sends, one that sends fifty requests and never
reads, and 100 threads scraping back to back. Prints one JSON line at the end:
{"scrapes": answered GETs, "errors": failed ones, "slowest": seconds}.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.request


def main(port: int, mode: str, seconds: float) -> int:
    url = f"http://127.0.0.1:{port}/metrics"
    lock = threading.Lock()
    tally = {"scrapes": 0, "errors": 0, "slowest": 0.0}
    stop = time.monotonic() + seconds

    def scrape() -> None:
        began = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                ok = answer.status == 200 and b"tcpeek_handshakes_total" in answer.read()
        except OSError:
            ok = False
        took = time.monotonic() - began
        with lock:
            tally["scrapes" if ok else "errors"] += 1
            tally["slowest"] = max(tally["slowest"], round(took, 3))

    held: list[socket.socket] = []
    if mode == "steady":
        while time.monotonic() < stop:
            scrape()
            time.sleep(max(0.0, 1.0 - (time.monotonic() % 1.0)))
    else:
        held.append(socket.create_connection(("127.0.0.1", port)))  # never sends
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        try:
            for _ in range(50):  # asks, never reads
                stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            # The server answers one request a connection and closes it: on a busy
            # machine it may do so before the fifty are sent. Still a client that
            # never read its answer, which is all this one is for.
            pass
        held.append(stalled)

        def hammer() -> None:
            while time.monotonic() < stop:
                scrape()

        threads = [threading.Thread(target=hammer) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for s in held:
        s.close()
    sys.stdout.write(json.dumps(tally) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
