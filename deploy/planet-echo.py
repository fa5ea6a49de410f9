#!/usr/bin/env python3
"""The echo service (RFC 862) of a planet's remote site (deploy/planet-net.sh).

Answers on TCP and UDP, IPv4 and IPv6 (one dual-stack socket each), every
datagram and every byte sent back as received. Runs until SIGTERM.

  planet-echo.py [--port 7]
"""
import argparse
import selectors
import signal
import socket
import sys


def listening(kind, port):
    sock = socket.socket(socket.AF_INET6, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    if kind == socket.SOCK_STREAM:
        sock.listen(64)
    sock.setblocking(False)
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7)
    port = parser.parse_args().port
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tcp = listening(socket.SOCK_STREAM, port)
    udp = listening(socket.SOCK_DGRAM, port)
    events = selectors.DefaultSelector()
    events.register(tcp, selectors.EVENT_READ, "accept")
    events.register(udp, selectors.EVENT_READ, "datagram")
    print(f"echo server ready on port {port} (TCP and UDP, IPv4 and IPv6)", flush=True)
    while True:
        for key, _ in events.select():
            sock = key.fileobj
            if key.data == "accept":
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                events.register(conn, selectors.EVENT_READ, "stream")
            elif key.data == "datagram":
                try:
                    data, peer = sock.recvfrom(65535)
                    sock.sendto(data, peer)
                except (BlockingIOError, OSError):
                    pass
            else:
                try:
                    data = sock.recv(65536)
                    if data:
                        # Small writes to a fresh socket: a client that does not
                        # read is closed rather than waited for.
                        sock.setblocking(True)
                        sock.settimeout(5)
                        sock.sendall(data)
                        sock.setblocking(False)
                        continue
                except OSError:
                    pass
                events.unregister(sock)
                sock.close()


if __name__ == "__main__":
    main()
