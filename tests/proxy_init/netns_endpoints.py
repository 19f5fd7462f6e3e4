"""Helper processes for the network-namespace test, run with `ip netns exec` (stdlib only).

listen PORT...   accept on each port; print one JSON line per connection with the
                 port that accepted it and the original destination (SO_ORIGINAL_DST)
connect HOST PORT [UID]
                 connect (as UID when given); print connected, refused or timeout
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  (loaded while root: socket needs it, /root is private)
import json
import os
import socket
import struct
import sys
import threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def original_destination(conn: socket.socket) -> str:
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, address = struct.unpack_from("!2xH4s", raw)
    return f"{socket.inet_ntoa(address)}:{port}"


def serve(listener: socket.socket, port: int) -> None:
    while True:
        conn, _ = listener.accept()
        with conn:
            line = {"port": port, "original": original_destination(conn)}
            print(json.dumps(line), flush=True)


def listen(ports: list[int]) -> None:
    for port in ports:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
        listener.listen()
        threading.Thread(target=serve, args=(listener, port), daemon=True).start()
    print(json.dumps({"listening": ports}), flush=True)
    threading.Event().wait()


def connect(host: str, port: int, uid: int | None) -> None:
    if uid is not None:
        os.setgid(uid)
        os.setuid(uid)
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except TimeoutError:
        print("timeout")


if __name__ == "__main__":
    if sys.argv[1] == "listen":
        listen([int(port) for port in sys.argv[2:]])
    else:
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else None)
