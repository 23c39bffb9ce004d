"""Every TCP port a running cluster listens on refuses callers without the cluster token.

The ports are not listed by hand: the test reads them from the processes of a
head started with ``skate start --head`` (control store, node manager, the
dashboard, and a worker running a detached actor) through /proc (psutil), so
a port someone adds later is probed too. For each one it finds the protocol
that answers the right token -- Skate's framed RPC over TCP, the same over
gRPC, the object transfer's gRPC, the object stream, HTTP -- and then shows
that a missing or wrong token is refused. A port no probe recognizes fails
the test: it would be a port nobody checked.
"""

import json
import os
import socket
import struct
import urllib.error
import urllib.request

import psutil
import pytest

from skate.core import rpc
from skate.core.object_store import stream
from skate.core.rpc import methods as m
from tests.scripts.test_cli import head, run_driver  # noqa: F401 - the fixture

pytestmark = pytest.mark.skate_only
WRONG = "0" * 32


def _listening_ports(pids) -> dict[int, str]:
    """{port: the command of the process listening on it} for the given processes and
    everything they started."""
    procs = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            procs += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    ports = {}
    for p in procs:
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    ports[c.laddr.port] = " ".join(p.cmdline()[:4])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return ports


# -- probes: each returns None (not this protocol) or what a call without the token got ------
def _framed(port: int, token: str, via: str):
    """Skate's framed RPC (``tcp:``) or the same over gRPC (``grpc:``): a ping."""
    try:
        good = rpc.connect(f"{via}:127.0.0.1:{port}", token=token, timeout=3)
    except (OSError, ValueError, rpc.ConnectionClosed):
        return None
    try:
        if good.call(m.PING, timeout=3) != "pong":
            return None
    except Exception:  # noqa: BLE001 - not this protocol
        return None
    finally:
        good.close()
    try:
        bad = rpc.connect(f"{via}:127.0.0.1:{port}", token=WRONG, timeout=3)
    except (OSError, rpc.ConnectionClosed):
        return "refused at connect"
    try:
        bad.call(m.PING, timeout=3)
        return "ANSWERED"
    except rpc.ConnectionClosed:
        return "refused"
    except TimeoutError:
        return "refused (no answer)"
    finally:
        bad.close()


def _transfer(port: int, token: str):
    """The object transfer's gRPC service: an unknown object with the token is NOT_FOUND."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        pull = ch.unary_stream("/skate.ObjectTransfer/Pull")
        codes = []
        for metadata in ((("skate-token", token),), (("skate-token", WRONG),), ()):
            try:
                list(pull(b"\x00" * 16, metadata=metadata, timeout=3))
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code())
    if codes[0] != grpc.StatusCode.NOT_FOUND:
        return None
    ok = codes[1:] == [grpc.StatusCode.UNAUTHENTICATED] * 2
    return "refused" if ok else f"ANSWERED {codes[1:]}"


def _object_stream(port: int, token: str):
    """The object stream: an unknown object with the token is MISSING, without it REFUSED."""
    def ask(tok: str):
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        try:
            oid, node = b"\x00" * 16, b"probe"
            s.sendall(stream.MAGIC + struct.pack("<H", len(tok)) + tok.encode()
                      + struct.pack("<H", len(oid)) + oid + struct.pack("<H", len(node)) + node)
            return s.recv(9)[:1]
        except OSError:
            return b""
        finally:
            s.close()

    if ask(token) != bytes([stream.MISSING]):
        return None
    return "refused" if ask(WRONG) in (bytes([stream.REFUSED]), b"") else "ANSWERED"


def _http(port: int, token: str):
    """HTTP: the dashboard's writes need the token (its reads are open by design)."""
    base = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{base}/api/version", timeout=3) as r:
            if r.status != 200:
                return None
    except (OSError, urllib.error.URLError):
        return None
    req = urllib.request.Request(f"{base}/api/jobs/", method="POST",
                                 data=json.dumps({"entrypoint": "echo hi"}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {WRONG}"})
    try:
        urllib.request.urlopen(req, timeout=3)
        return "ANSWERED"
    except urllib.error.HTTPError as e:
        return "refused" if e.code == 401 else f"ANSWERED {e.code}"


def _metrics_exporter(port: int, token: str):
    """The metrics exporter (``--metrics-export-port``): token-free by design, so it must
    serve metrics and nothing that changes the cluster."""
    base = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
            if r.status != 200 or b"# TYPE skate_nodes gauge" not in r.read():
                return None
    except (OSError, urllib.error.URLError):
        return None
    try:
        urllib.request.urlopen(urllib.request.Request(f"{base}/api/jobs/", method="POST",
                                                      data=b"{}"), timeout=3)
        return "ANSWERED a write"
    except urllib.error.HTTPError:
        return "refused: read-only metrics"


PROBES = [("framed rpc", lambda p, t: _framed(p, t, "tcp")),
          ("grpc rpc", lambda p, t: _framed(p, t, "grpc")),
          ("object transfer", _transfer), ("object stream", _object_stream), ("http", _http),
          ("metrics exporter", _metrics_exporter)]


def test_every_listening_port_refuses_a_caller_without_the_token(head):  # noqa: F811
    _out, info = head
    drv = run_driver("""
        import skate
        skate.init(address="auto", namespace="ports")
        @skate.remote
        class Keeper:
            def ping(self):
                return "pong"
        k = Keeper.options(name="keeper", lifetime="detached").remote()
        assert skate.get(k.ping.remote()) == "pong"
    """)
    assert drv.returncode == 0, drv.stderr
    with open(os.path.join(info["session_dir"], "token")) as f:
        token = f.read().strip()
    pids = [*info["pids"], *([info["dashboard_pid"]] if info.get("dashboard_pid") else [])]
    ports = _listening_ports(pids)
    assert len(ports) >= 5, ports  # control store, node manager, transfer, stream, dashboard

    seen = {}
    for port, who in sorted(ports.items()):
        for kind, probe in PROBES:
            outcome = probe(port, token)
            if outcome is not None:
                seen[port] = (kind, outcome, who)
                break
        else:
            pytest.fail(f"port {port} of {who!r} answers none of the known protocols: "
                        f"nobody checked that it needs the token")
    for port, (kind, outcome, who) in seen.items():
        assert outcome.startswith("refused"), f"{kind} on {port} ({who}): {outcome}"
    kinds = {kind for kind, _, _ in seen.values()}
    assert {"grpc rpc", "object stream", "http"} <= kinds, seen

    cleanup = run_driver("""
        import skate
        skate.init(address="auto", namespace="ports")
        skate.kill(skate.get_actor("keeper"))
    """)
    assert cleanup.returncode == 0, cleanup.stderr
