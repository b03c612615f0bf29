"""Whose is the listener on a local port: our tbot's diagnostics service, or another's?

A 200 from ``GET /wait`` on 127.0.0.1:<diag-port> says only that something
there is ready. The port was free when the step checked it, but another
process (another job's tbot on a shared self-hosted runner, say) may bind it
before our tbot does; our tbot then fails to bind and exits. So after the
answer, the step looks in /proc (Linux): every TCP socket listening on that
port, from /proc/net/tcp and tcp6, against the sockets tbot's process holds
(``/proc/<pid>/fd`` links read ``socket:[inode]``), or else a process tbot
started (it runs in a session of its own: a wrapper script's tbot, say).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

from teleport_auth.procfs import stat_fields

_LISTEN = "0A"  # TCP_LISTEN in the kernel's state column
# The addresses a listener answering on 127.0.0.1 may be bound to (:: is dual-stack in Go).
_REACHES_LOOPBACK = frozenset(
    {
        ipaddress.IPv4Address("127.0.0.1"),
        ipaddress.IPv4Address("0.0.0.0"),  # noqa: S104 - compared with, not bound
        ipaddress.IPv6Address("::"),
    }
)


def reached_on_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a listener bound to ``address`` answers (or clashes) on 127.0.0.1 of its port:
    127.0.0.1 itself or a wildcard, IPv4-mapped forms included; ::1 or 127.0.0.2 not."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in _REACHES_LOOPBACK


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """/proc/net/tcp{,6} write each 32-bit word of the address in host byte order."""
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    packed = struct.pack(f"={len(words)}I", *words)
    family = socket.AF_INET if len(words) == 1 else socket.AF_INET6
    return ipaddress.ip_address(socket.inet_ntop(family, packed))


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int] | None:
    """Inodes of the TCP sockets listening on ``port`` that 127.0.0.1 reaches.

    None when /proc does not tell (not Linux).
    """
    found: set[int] = set()
    readable = False
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            address, _, port_hex = fields[1].partition(":")
            if int(port_hex, 16) == port and reached_on_loopback(_address(address)):
                found.add(int(fields[9]))
    return found if readable else None


def session_members(leader: int, proc: Path = Path("/proc")) -> Iterator[int]:
    """The processes of the session ``leader`` leads: tbot runs in a session of its own,
    so these are tbot and whatever it started (a wrapper script's tbot, say)."""
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        fields = stat_fields(Path(entry.path))  # None: exited in the meantime
        if fields is not None and len(fields) > 3 and fields[3] == str(leader):
            yield int(entry.name)


def socket_inodes(pid: int, proc: Path = Path("/proc")) -> set[int] | None:
    """Inodes of the sockets process ``pid`` holds (none once it has exited).

    None when this process may not look (a hardened /proc or ptrace policy).
    """
    inodes: set[int] = set()
    fd_dir = proc / str(pid) / "fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return inodes
    except OSError:
        return None
    for name in names:
        try:
            target = os.readlink(fd_dir / name)
        except OSError:
            continue  # closed in the meantime
        if target.startswith("socket:[") and target.endswith("]"):
            inodes.add(int(target[8:-1]))
    return inodes


def held_by_session(leader: int, port: int, proc: Path = Path("/proc")) -> bool | None:
    """Whether the listener 127.0.0.1:``port`` reaches belongs to ``leader``'s session.

    False when another process (or nobody) holds it; None when this system cannot tell.
    """
    listening = listening_inodes(port, proc)
    if listening is None:
        return None
    if not listening:
        return False
    # A generator: /proc is scanned only if tbot itself does not hold the port.
    others = (pid for pid in session_members(leader, proc) if pid != leader)
    for pid in itertools.chain((leader,), others):
        inodes = socket_inodes(pid, proc)
        if inodes is None:
            return None
        if listening & inodes:
            return True
    return False
