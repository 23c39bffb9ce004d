"""Several hosts on one machine: Linux network namespaces joined by a bridge.

Each host is a network namespace (its own interfaces, its own 10.213.<net>.x
address on a veth pair into one bridge) with a mount namespace of its own in
which a tmpfs covers ``ROOT``: the Skate session folders, Unix sockets and
object-store arenas of one host cannot be seen from another, so everything
between hosts goes over TCP, with the token, as between machines. The bridge
has no address in the root namespace, so nothing is routed outside the hosts.

A host is kept by a sleeping process that holds its mount namespace;
``Host.run`` / ``Host.popen`` enter both namespaces with ``nsenter``.
``Hosts.close()`` kills every process in the namespaces, then removes them
and the bridge -- also when the test failed. Needs root and iproute2's ``ip``,
``unshare`` and ``nsenter`` (``available()`` says why not).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time

ROOT = "/tmp/skate-netns"  # each host's private tmpfs is mounted here, in its namespace
HOST_ENV = {"SKATE_TEMP_DIR": f"{ROOT}/sessions", "SKATE_SHM_DIR": f"{ROOT}/shm"}


def available() -> str | None:
    """None if hosts can be built here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2 / util-linux)"
    return None


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


class Host:
    def __init__(self, name: str, ns: str, ip: str, veth: str, holder: subprocess.Popen):
        self.name, self.ns, self.ip, self.veth, self.holder = name, ns, ip, veth, holder

    def _enter(self, argv: list) -> list:
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", *argv]

    def env(self, extra: dict | None = None) -> dict:
        return {**os.environ, **HOST_ENV, "PYTHONUNBUFFERED": "1", **(extra or {})}

    def run(self, argv: list, env: dict | None = None, timeout: float = 120,
            check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(self._enter(argv), capture_output=True, text=True,
                              timeout=timeout, env=self.env(env))
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: {argv} exited {proc.returncode}:\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return proc

    def python(self, code: str, env: dict | None = None, timeout: float = 120,
               check: bool = True) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-c", code], env, timeout, check)

    def skate(self, *args: str, env: dict | None = None) -> str:
        return self.run([sys.executable, "-m", "skate.scripts.skate_cli", *args], env).stdout

    def read(self, path: str) -> str:
        return self.run(["cat", path]).stdout

    def cut(self) -> None:
        """Take this host's link down, as a pulled cable (no packet in or out)."""
        _sh("ip", "link", "set", self.veth, "down")


class Hosts:
    """``n`` hosts at 10.213.<net>.1 .. n, removed by ``close()``."""

    def __init__(self, n: int):
        self.tag = secrets.token_hex(2)
        self.bridge = f"skbr{self.tag}"
        self.net = 100 + int(self.tag, 16) % 100
        self.hosts: list[Host] = []
        os.makedirs(ROOT, exist_ok=True)
        try:
            _sh("ip", "link", "add", self.bridge, "type", "bridge")
            _sh("ip", "link", "set", self.bridge, "up")
            for i in range(n):
                self.hosts.append(self._host(i))
        except BaseException:
            self.close()
            raise

    def _host(self, i: int) -> Host:
        ns, outside, inside = f"sk{self.tag}h{i}", f"skv{self.tag}{i}", f"skp{self.tag}{i}"
        ip = f"10.213.{self.net}.{i + 1}"
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        _sh("ip", "link", "set", inside, "netns", ns)
        _sh("ip", "link", "set", outside, "master", self.bridge)
        _sh("ip", "link", "set", outside, "up")
        for cmd in (["ip", "addr", "add", f"{ip}/24", "dev", inside],
                    ["ip", "link", "set", inside, "up"], ["ip", "link", "set", "lo", "up"]):
            _sh("ip", "netns", "exec", ns, *cmd)
        holder = subprocess.Popen(
            ["ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
             "sh", "-c", f"mount -t tmpfs -o size=4g tmpfs {ROOT} && "
                         f"mkdir -p {ROOT}/sessions {ROOT}/shm && echo up && exec sleep 86400"],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "up":
            raise RuntimeError(f"host {i}: could not make its private tmpfs")
        return Host(f"host{i}", ns, ip, outside, holder)

    def close(self) -> None:
        for h in self.hosts:
            self._kill_all(h.ns)
            h.holder.kill()
            h.holder.wait(10)
            subprocess.run(["ip", "netns", "del", h.ns], capture_output=True)
            subprocess.run(["ip", "link", "del", h.veth], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    @staticmethod
    def _kill_all(ns: str) -> None:
        """Every process in the namespace: TERM, then KILL what is left after 5 s."""
        def pids():
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            return [int(p) for p in out.stdout.split()]

        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and [p for p in pids() if _alive(p)]:
                time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
