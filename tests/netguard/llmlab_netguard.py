"""Offline guard for the test suite: any connection to a non-loopback address raises.

The course promises "no downloads after set-up", so while the tests run nothing may even *try*
the network: not the test process, not the notebook kernels nbval starts, not the JupyterLab
server of the browser tests or its kernels. `install()` wraps the Python-level entry points
(`socket.socket.connect` / `connect_ex` / `sendto`, `socket.create_connection`,
`socket.getaddrinfo`) so that a non-loopback address or a hostname other than localhost raises
`NetworkBlockedError` *before* any packet (or DNS query) leaves. Every attempt is also recorded,
in memory and, when `LLMLAB_NETGUARD_LOG` names a file, appended there, because a library may
catch the error and carry on quietly: the root conftest fails the session when that file is not
empty. Child processes get the guard from `sitecustomize.py` next to this file (the root
conftest puts this folder first on PYTHONPATH).

Allowed: 127.0.0.0/8, ::1 (and IPv4-mapped loopback), Unix sockets, other non-IP families, and the
names "localhost" / "*.localhost". C extensions (ZeroMQ, Chromium) bypass Python sockets; the
browser tests pin Chromium's resolver to loopback, and `.ci/run` runs everything in a network
namespace with only `lo` where it can.
"""
import functools
import ipaddress
import os
import socket
import time

__all__ = ["NetworkBlockedError", "install", "installed", "is_allowed_host", "ATTEMPTS"]

LOG_ENV = "LLMLAB_NETGUARD_LOG"
ATTEMPTS = []  # "what was attempted" strings, in this process, for tests and post-mortems
_IP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_MARK = "_llmlab_netguard"  # set on the wrapped functions, so install() is idempotent


class NetworkBlockedError(ConnectionRefusedError):
    """Raised instead of opening a connection to a non-loopback address during the tests."""


def is_allowed_host(host) -> bool:
    """True for loopback IP literals, 'localhost' / '*.localhost', and an empty (wildcard) host."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%", 1)[0]  # "[::1]" and scoped "fe80::1%eth0"
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # any other name would need a DNS lookup: that is network too
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _block(what: str, address) -> None:
    """Record the attempt (memory + log file) and raise NetworkBlockedError."""
    message = (f"network access blocked by the llmlab test guard: {what}({address!r}) in pid "
               f"{os.getpid()}; the course must run offline (only 127.0.0.1 / ::1 allowed)")
    ATTEMPTS.append(message)
    path = os.environ.get(LOG_ENV)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%H:%M:%S')} {message}\n")
        except OSError:
            pass  # the error below is still raised
    raise NetworkBlockedError(message)


def _check_address(sock, address, what: str) -> None:
    """Raise for an IP socket address whose host is not loopback."""
    family = getattr(sock, "family", None)
    if family in _IP_FAMILIES and isinstance(address, tuple) and address:
        if not is_allowed_host(address[0]):
            _block(what, address)


def _wrap_method(original, what: str):
    @functools.wraps(original)
    def guarded(self, address, *args, **kwargs):
        _check_address(self, address, what)
        return original(self, address, *args, **kwargs)
    setattr(guarded, _MARK, True)
    return guarded


def _wrap_sendto(original):
    @functools.wraps(original)
    def guarded(self, data, *args):
        # sendto(data, address) or sendto(data, flags, address)
        if args:
            _check_address(self, args[-1], "socket.sendto")
        return original(self, data, *args)
    setattr(guarded, _MARK, True)
    return guarded


def _wrap_resolver(original, what: str):
    @functools.wraps(original)
    def guarded(host, *args, **kwargs):
        if not is_allowed_host(host) and host != socket.gethostname():
            _block(what, host)
        return original(host, *args, **kwargs)
    setattr(guarded, _MARK, True)
    return guarded


def _wrap_create_connection(original):
    @functools.wraps(original)
    def guarded(address, *args, **kwargs):
        # checked before the name is resolved, so not even a DNS query leaves
        if isinstance(address, tuple) and address and not is_allowed_host(address[0]):
            _block("socket.create_connection", address)
        return original(address, *args, **kwargs)
    setattr(guarded, _MARK, True)
    return guarded


def installed() -> bool:
    """True when this process's socket functions are guarded."""
    return getattr(socket.socket.connect, _MARK, False)


def install() -> None:
    """Guard this process's sockets (idempotent)."""
    if installed():
        return
    sock = socket.socket
    sock.connect = _wrap_method(sock.connect, "socket.connect")
    sock.connect_ex = _wrap_method(sock.connect_ex, "socket.connect_ex")
    sock.sendto = _wrap_sendto(sock.sendto)
    socket.create_connection = _wrap_create_connection(socket.create_connection)
    socket.getaddrinfo = _wrap_resolver(socket.getaddrinfo, "socket.getaddrinfo")
