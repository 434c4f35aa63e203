"""Run inside a private network namespace: how many of 100 simultaneous connections to 8883
get through, before and after loading deploy/mosquitto/nftables-ratelimit.conf.

Prints `{"without": N, "with": M}`. Used by test_broker_ratelimit.py (`unshare -n`).
"""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time

ATTEMPTS = 100
WAIT_S = 0.5  # a SYN the rules drop is retried only after 1 s: give up before that


def _connected(port: int) -> int:
    sockets = []
    for _ in range(ATTEMPTS):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        sockets.append(client)
    pending = {client.fileno(): client for client in sockets}
    ok = 0
    deadline = time.monotonic() + WAIT_S
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            client = pending.pop(fd)
            poller.unregister(fd)
            ok += client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    for client in sockets:
        client.close()
    return ok


def main() -> None:
    rules = sys.argv[1]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 8883))
        listener.listen(4 * ATTEMPTS)
        without = _connected(8883)
    subprocess.run(["nft", "-f", rules], check=True)
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 8883))
        listener.listen(4 * ATTEMPTS)
        limited = _connected(8883)
    print(json.dumps({"without": without, "with": limited}))


if __name__ == "__main__":
    main()
