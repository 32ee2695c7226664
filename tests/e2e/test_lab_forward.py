"""lab.forward.PortForward: a loopback port here that leads into a lab namespace."""

from __future__ import annotations

import socket
import threading

import pytest

from phoneprov.lab.forward import PortForward
from phoneprov.phone.netns import socket_in

pytestmark = pytest.mark.e2e


def echo_server(ns: str) -> tuple[socket.socket, int]:
    """A TCP server on 127.0.0.1 inside `ns` that answers each connection with what it got,
    upper-cased, once the client has finished sending."""
    server = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


def test_a_connection_reaches_the_namespace_and_back(lab):
    host = lab.add_host("appl", "10.231.70.1/24")
    server, port = echo_server(host.netns)
    try:
        with PortForward(host.netns, ("127.0.0.1", port)) as forward:
            assert forward.url == f"http://127.0.0.1:{forward.port}"
            big = bytes(range(256)) * 4096  # 1 MiB: several reads each way
            assert exchange(forward.port, b"hello") == b"HELLO"
            assert exchange(forward.port, big) == big.upper()
        with pytest.raises(OSError):
            exchange(forward.port, b"closed")
    finally:
        server.close()


def test_nothing_listening_in_the_namespace_ends_the_connection_without_an_answer(lab):
    host = lab.add_host("appl", "10.231.70.1/24")
    with PortForward(host.netns, ("127.0.0.1", 9)) as forward:
        try:
            answer = exchange(forward.port, b"anyone?")
        except ConnectionResetError:  # closed with our bytes unread: a reset
            answer = b""
        assert answer == b""


def test_close_cuts_the_connections_it_relays(lab):
    host = lab.add_host("appl", "10.231.70.1/24")
    server, port = echo_server(host.netns)  # answers only once the client stops sending
    try:
        forward = PortForward(host.netns, ("127.0.0.1", port))
        with socket.create_connection(("127.0.0.1", forward.port), timeout=10) as conn:
            conn.sendall(b"still talking")
            forward.close()
            try:
                rest = conn.recv(4096)
            except ConnectionResetError:
                rest = b""
        assert rest == b""  # ended, without the server's answer
    finally:
        server.close()
