"""The pod network: what it is (pure: addresses, CNI config, isolation rules) and the thin layer that
makes it on the host (a bridge with the host's address, iptables rules) and removes it again.

Pods sit on a dedicated bridge in a dedicated /24. The host's address on that bridge is where pods
reach the API server, S3 and DNS; nothing else outside the subnet is reachable, because the `mangle`
table (which kube-proxy never touches, and which runs before `filter`, where kube-proxy and the kubelet
insert their own ACCEPTs) drops everything from the subnet that is neither for another pod (FORWARD)
nor for the bridge address (INPUT). Every rule carries a comment naming this node, so leftovers of a
crashed run are found by name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BRIDGE_PREFIX = "fbnode"
RULE_COMMENT_PREFIX = "faceblur-node"
# 10.213.0.0/16 holds the candidate /24s; the service network (10.0.0.0/24) lies outside it.
CANDIDATE_NETWORKS = tuple(f"10.213.{n}.0/24" for n in range(256))


class NetworkError(RuntimeError):
    """An `ip` or `iptables` command failed."""


@dataclass(frozen=True)
class PodNetwork:
    """One node's pod network: bridge name, subnet and the host's address on the bridge (.1)."""

    bridge: str
    subnet: str

    @property
    def host_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def comment(self) -> str:
        return f"{RULE_COMMENT_PREFIX}:{self.bridge}"


def choose_network(in_use: list[str], index: int = 0) -> PodNetwork:
    """The first candidate /24 overlapping no network in use (routes and addresses of this host)."""
    taken = [ipaddress.ip_network(n, strict=False) for n in in_use]
    for candidate in CANDIDATE_NETWORKS:
        net = ipaddress.ip_network(candidate)
        if not any(net.overlaps(t) for t in taken if t.version == 4 and t.prefixlen > 0):
            return PodNetwork(f"{BRIDGE_PREFIX}{index}", candidate)
    raise NetworkError("no free /24 in 10.213.0.0/16 for the pod network")


def cni_conflist(net: PodNetwork, ipam_dir: Path) -> dict[str, Any]:
    """containernetworking-plugins `bridge` + `host-local`; no masquerade, IPAM state in the work folder."""
    return {
        "cniVersion": "0.4.0",
        "name": "faceblur-node",
        "plugins": [
            {
                "type": "bridge",
                "bridge": net.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.subnet, "gateway": net.host_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def isolation_rules(net: PodNetwork) -> list[tuple[str, list[str]]]:
    """(chain, rule) pairs for `iptables -t mangle`: pod traffic goes to pods and the bridge address only."""
    tag = ["-m", "comment", "--comment", net.comment]
    return [
        ("FORWARD", ["-s", net.subnet, "!", "-d", net.subnet, *tag, "-j", "DROP"]),
        ("INPUT", ["-s", net.subnet, "!", "-d", net.host_ip, *tag, "-j", "DROP"]),
    ]


def parse_in_use(addresses_json: str, routes_json: str) -> list[str]:
    """Networks of `ip -j addr` and `ip -j route` output, for choose_network."""
    found: list[str] = []
    for link in json.loads(addresses_json or "[]"):
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                found.append(f"{info['local']}/{info['prefixlen']}")
    for route in json.loads(routes_json or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            found.append(dst if "/" in dst else f"{dst}/32")
    return found


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetworkError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def host_networks() -> list[str]:
    return parse_in_use(
        _run("ip", "-j", "addr").stdout, _run("ip", "-j", "route", "show", "table", "all").stdout
    )


def create(net: PodNetwork) -> None:
    """The bridge with the host address (up before any pod, so the API server can bind to it) and rules."""
    _run("ip", "link", "add", net.bridge, "type", "bridge")
    _run(
        "ip", "addr", "add", f"{net.host_ip}/{ipaddress.ip_network(net.subnet).prefixlen}", "dev", net.bridge
    )
    _run("ip", "link", "set", net.bridge, "up")
    for chain, rule in isolation_rules(net):
        _run("iptables", "-w", "-t", "mangle", "-I", chain, "1", *rule)


def blocked_port_rule(net: PodNetwork, port: int) -> list[str]:
    """A `mangle INPUT` rule dropping pods' TCP packets to port on the bridge address: a service on the
    host (e.g. S3) unreachable from pods, as in a network partition (no answer, not a refusal), while
    the host's own connections to it (over loopback) still work. Tagged, so a crash's leftover is found."""
    return [
        *("-i", net.bridge, "-s", net.subnet, "-d", net.host_ip, "-p", "tcp", "--dport", str(port)),
        *("-m", "comment", "--comment", f"{net.comment}:blocked-{port}", "-j", "DROP"),
    ]


@contextlib.contextmanager
def port_unreachable_from_pods(net: PodNetwork, port: int) -> Iterator[None]:
    """While inside, pods get no answer from the host's port (see blocked_port_rule); undone on exit."""
    rule = blocked_port_rule(net, port)
    _run("iptables", "-w", "-t", "mangle", "-I", "INPUT", "1", *rule)
    try:
        yield
    finally:
        _run("iptables", "-w", "-t", "mangle", "-D", "INPUT", *rule)


def drop_counts(net: PodNetwork) -> dict[str, int]:
    """Packets each isolation rule has dropped so far, by chain (FORWARD, INPUT)."""
    counts: dict[str, int] = {}
    for chain, _ in isolation_rules(net):
        out = _run("iptables", "-w", "-t", "mangle", "-L", chain, "-v", "-x", "-n").stdout
        for line in out.splitlines():
            if net.comment in line and "DROP" in line:
                counts[chain] = counts.get(chain, 0) + int(line.split()[0])
    return counts


def links_of(bridge: str) -> list[str]:
    """The bridge itself (if present) and every link enslaved to it."""
    done = _run("ip", "-j", "link", "show", check=False)
    names: list[str] = []
    for link in json.loads(done.stdout or "[]"):
        if link.get("ifname") == bridge or link.get("master") == bridge:
            names.append(str(link["ifname"]))
    return names


def leftover_bridges() -> list[str]:
    """Bridges of this module's naming on the host (from this or a crashed run)."""
    done = _run("ip", "-j", "link", "show", "type", "bridge", check=False)
    return [
        str(link["ifname"])
        for link in json.loads(done.stdout or "[]")
        if str(link.get("ifname", "")).startswith(BRIDGE_PREFIX)
    ]


def remove_links(bridge: str) -> None:
    """Delete the veths left on the bridge (pods killed without a CNI DEL), then the bridge."""
    for name in reversed(links_of(bridge)):
        _run("ip", "link", "del", name, check=False)


def remove_tagged_rules(comment_prefix: str = RULE_COMMENT_PREFIX) -> int:
    """Delete every iptables rule (any table, IPv4) whose comment starts with comment_prefix."""
    removed = 0
    for table in ("mangle", "filter", "nat"):
        listing = _run("iptables", "-w", "-t", table, "-S", check=False).stdout
        for line in listing.splitlines():
            if line.startswith("-A ") and comment_prefix in line:
                spec = _split_rule(line[3:])
                with contextlib.suppress(NetworkError):
                    _run("iptables", "-w", "-t", table, "-D", *spec)
                    removed += 1
    return removed


def _split_rule(text: str) -> list[str]:
    return shlex.split(text)


def remove_kube_chains() -> None:
    """Delete the KUBE-* chains the kubelet and kube-proxy made (IPv4 and IPv6), and the jumps to them.

    Only called while this node holds the host-wide node lock, so no other kubelet owns such chains.
    """
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listing = _run(tool, "-w", "-t", table, "-S", check=False).stdout
            chains = [line.split()[1] for line in listing.splitlines() if line.startswith("-N KUBE-")]
            for line in listing.splitlines():
                parts = line.split()
                if line.startswith("-A ") and not parts[1].startswith("KUBE-") and "KUBE-" in line:
                    _run(tool, "-w", "-t", table, "-D", *_split_rule(line[3:]), check=False)
            for chain in chains:
                _run(tool, "-w", "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(tool, "-w", "-t", table, "-X", chain, check=False)


def rules_mentioning(words: list[str]) -> list[str]:
    """iptables-save lines (IPv4 and IPv6) that contain any of words: what a clean stop must leave none of."""
    found: list[str] = []
    for tool in ("iptables-save", "ip6tables-save"):
        text = _run(tool, check=False).stdout
        found += [line for line in text.splitlines() if any(w in line for w in words)]
    return found
