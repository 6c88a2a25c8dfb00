"""Where report texts may go: loopback and private (hospital-network) addresses, or with consent."""

from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlparse

log = logging.getLogger(__name__)


def is_private_host(host: str) -> bool:
    """Loopback, private or link-local; a host name counts if every address it resolves to does."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    return bool(addresses) and all(a.is_loopback or a.is_private or a.is_link_local for a in addresses)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is this machine: a text sent there does not leave it."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_endpoint(url: str, allow_remote: bool) -> str:
    """Refuse (ValueError) a URL outside loopback/private networks unless ``allow_remote``; return its host."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    host = parsed.hostname
    if is_private_host(host):
        return host
    if not allow_remote:
        raise ValueError(
            f"{host} is not a loopback or private address: report texts (patient data) would leave this "
            "network; pass --allow-remote if that is permitted"
        )
    log.warning("--allow-remote: report texts will be sent to %s, outside this network", host)
    return host
