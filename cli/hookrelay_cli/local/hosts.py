"""A hosts file for the local stack: send chosen names (hooks.slack.com, a test name) to chosen addresses.

Like /etc/hosts, but read at every lookup so a name can be pointed elsewhere while the stack runs
(which is how a test makes a public-looking name turn private between subscribing and sending).
Names not in the file go to the system resolver.
"""

import socket
from pathlib import Path
from typing import Any

# Local only: the hosts file to consult (lines "address name [name ...]", '#' comments).
HOSTS_FILE_VARIABLE = "HOOKRELAY_LOCAL_HOSTS_FILE"


def read_hosts(path: Path) -> dict[str, str]:
    """Name → address from a hosts file; the first line naming a host wins, as in /etc/hosts."""
    addresses: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            addresses.setdefault(name.lower(), fields[0])
    return addresses


def use_hosts_file(path: Path) -> None:
    """Make every lookup of this process consult `path` first."""
    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (address := read_hosts(path).get(host.lower())):
            return system_getaddrinfo(address, port, *args, **kwargs)
        return system_getaddrinfo(host, port, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo
