"""Loopback-only networking for the hub tests: any attempt to resolve or connect to another host fails the test.

``install()`` wraps ``socket.getaddrinfo`` and ``socket.create_connection``; a host other than 127.0.0.1 /
localhost / ::1 raises :class:`ForbiddenNetworkAccess`, a BaseException so that no ``except Exception`` in the
code under test (ours or huggingface_hub's) can turn it into an ordinary connection error and let a test pass.
"""

from __future__ import annotations

import socket

ALLOWED = {"127.0.0.1", "localhost", "::1"}


class ForbiddenNetworkAccess(BaseException):
    pass


def _check(host) -> None:
    h = host.decode() if isinstance(host, bytes) else str(host)
    if h not in ALLOWED:
        raise ForbiddenNetworkAccess(f"a hub test tried to reach {h!r}: tests must only talk to 127.0.0.1")


def install(patch=None):
    """Patch the socket module (through ``patch(obj, name, value)``, e.g. monkeypatch.setattr, if given)."""
    real_gai, real_cc = socket.getaddrinfo, socket.create_connection

    def getaddrinfo(host, *args, **kwargs):
        _check(host)
        return real_gai(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        _check(address[0])
        return real_cc(address, *args, **kwargs)

    setter = patch or setattr
    setter(socket, "getaddrinfo", getaddrinfo)
    setter(socket, "create_connection", create_connection)
