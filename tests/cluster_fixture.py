"""The shipped three-node JetStream cluster (``deploy/nats/cluster/``) on free loopback ports.

The files are used as shipped: only their ports and store directories are replaced (every
``127.0.0.1:<port>`` of the three files is mapped to a free port, so listen, monitoring,
cluster listen and routes stay consistent), and the servers are started with ``-c``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.runtime.embedded import EmbeddedServer, free_port

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_DIR = ROOT / "deploy" / "nats" / "cluster"
NODE_FILES = ("node-1.conf", "node-2.conf", "node-3.conf")

_ADDRESS = re.compile(r"127\.0\.0\.1:(\d+)")
_STORE_DIR = re.compile(r"^(\s*store_dir:\s*).*$", re.M)


def _port(pattern: str, text: str) -> int:
    match = re.search(pattern, text, re.M)
    assert match is not None, f"no {pattern!r} in the shipped config"
    return int(match.group(1))


@dataclass
class ClusterNode:
    name: str
    config: Path
    server: EmbeddedServer
    http_port: int
    cluster_port: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def running(self) -> bool:
        proc = self.server.process
        return proc is not None and proc.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye to the cluster."""
        proc = self.server.process
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        self.server.process = None

    def jsz(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.http_port}/jsz"
        with urllib.request.urlopen(url, timeout=2) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data


@dataclass
class Cluster:
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    @property
    def nats_url(self) -> str:
        return ",".join(self.urls)

    def node_named(self, name: str) -> ClusterNode:
        return next(n for n in self.nodes if n.name == name)

    def running(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.running]

    async def wait_ready(self, timeout: float = 30.0) -> str:
        """Until every running node sees all of them and a JetStream meta leader; its name."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while True:
            leaders: set[str] = set()
            try:
                for node in self.running():
                    meta = (await asyncio.to_thread(node.jsz)).get("meta_cluster") or {}
                    last = meta
                    if meta.get("leader") and meta.get("cluster_size") == len(self.nodes):
                        leaders.add(meta["leader"])
                    else:
                        leaders.add("")
                    if meta.get("leader") == node.name and not _peers_current(meta, self):
                        leaders.add("")  # the leader still sees a peer offline: placement fails
            except OSError as exc:  # the monitoring port is not up yet
                last = exc
                leaders = {""}
            if len(leaders) == 1 and "" not in leaders:
                return leaders.pop()
            if loop.time() > deadline:
                raise TimeoutError(f"no JetStream meta leader within {timeout}s: {last}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                await node.kill()


def _peers_current(meta: dict[str, Any], cluster: Cluster) -> bool:
    """Whether the meta leader sees every other running node as a current, online peer."""
    names = {n.name for n in cluster.running()} - {meta.get("leader")}
    seen = {
        r.get("name"): r
        for r in meta.get("replicas") or []
        if r.get("current") and not r.get("offline")
    }
    return names <= set(seen)


def render_configs(out_dir: Path) -> list[tuple[str, Path, dict[str, int], Path]]:
    """The shipped node configs with free ports and store dirs under ``out_dir``.

    Returns, per node: its server name, the rendered config, its ports
    (``client``, ``http``, ``cluster``) and its store directory.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [(CLUSTER_DIR / f).read_text() for f in NODE_FILES]
    mapping: dict[int, int] = {}
    for text in texts:
        for port in _ADDRESS.findall(text):
            mapping.setdefault(int(port), 0)
    # three nodes × (client, http, cluster); the routes name the cluster ports again
    assert len(mapping) == 9, f"unexpected ports in the shipped configs: {sorted(mapping)}"
    used: set[int] = set()
    for old in mapping:
        new = free_port()
        while new in used:
            new = free_port()
        used.add(new)
        mapping[old] = new
    rendered = []
    for file, text in zip(NODE_FILES, texts, strict=True):
        name_match = re.search(r"^server_name:\s*(\S+)", text, re.M)
        assert name_match is not None
        name = name_match.group(1)
        ports = {
            "client": mapping[_port(r"^listen:\s*127\.0\.0\.1:(\d+)", text)],
            "http": mapping[_port(r"^http:\s*127\.0\.0\.1:(\d+)", text)],
            "cluster": mapping[_port(r"^\s+listen:\s*127\.0\.0\.1:(\d+)", text)],
        }
        store = out_dir / name / "js"
        new_text, stores = _STORE_DIR.subn(lambda m, s=store: f"{m.group(1)}{s}", text)
        assert stores == 1, f"{file}: expected one store_dir"
        new_text, addresses = _ADDRESS.subn(
            lambda m: f"127.0.0.1:{mapping[int(m.group(1))]}", new_text
        )
        assert addresses == 6, f"{file}: expected listen, http, cluster listen and 3 routes"
        path = out_dir / file
        path.write_text(new_text)
        rendered.append((name, path, ports, store))
    return rendered


async def start_cluster(out_dir: Path, *, ready_timeout: float = 30.0) -> Cluster:
    """Start the three nodes (all at once: each retries its routes) and wait for a meta leader.

    On failure every node already started is killed before the error propagates.
    """
    cluster = Cluster()
    try:
        for name, config, ports, store in render_configs(out_dir):
            store.mkdir(parents=True, exist_ok=True)
            server = EmbeddedServer(store.parent, port=ports["client"], config_file=config)
            cluster.nodes.append(ClusterNode(name, config, server, ports["http"], ports["cluster"]))
        await asyncio.gather(*(n.server.start() for n in cluster.nodes))
        await cluster.wait_ready(ready_timeout)
    except BaseException:
        await cluster.stop()
        raise
    return cluster
