"""deploy/kubernetes/: the manifests agree with the CLI they run.

Every container command parses with ``skate start``'s own argument parser; the
head's declared ports are those its command opens; a worker joins the head
Service's control-store port; every pod takes SKATE_TOKEN from the Secret.
"""

import os

import pytest

yaml = pytest.importorskip("yaml")

from skate.scripts import skate_cli  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, "deploy", "kubernetes")
SERVE_PORT = 8000  # serve's default http port, opened by serve.start on the head


def _docs():
    out = []
    for name in sorted(os.listdir(FOLDER)):
        with open(os.path.join(FOLDER, name)) as f:
            out += [d for d in yaml.safe_load_all(f) if d]
    return out


def _kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _container(deployment):
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def _parse(command):
    """``skate start ...`` parsed by the CLI's parser, with the env references filled."""
    assert command[:2] == ["skate", "start"], command
    args = [a.replace("$(POD_IP)", "10.1.2.3").replace("$(CPUS)", "4") for a in command]
    return skate_cli.build_parser().parse_args(args[1:])


def test_manifests_run_commands_the_cli_accepts():
    docs = _docs()
    deployments, services = _kind(docs, "Deployment"), _kind(docs, "Service")
    (secret,) = _kind(docs, "Secret").values()
    head = _container(deployments["skate-head"])
    head_args = _parse(head["command"])
    assert head_args.head and head_args.block and head_args.dashboard_host == "0.0.0.0"
    declared = {p["name"]: p["containerPort"] for p in head["ports"]}
    opened = {head_args.port, head_args.dashboard_port, head_args.metrics_export_port,
              SERVE_PORT}
    assert set(declared.values()) == opened
    service = services["skate-head"]
    assert service["spec"]["selector"] == \
        deployments["skate-head"]["spec"]["template"]["metadata"]["labels"]
    for p in service["spec"]["ports"]:
        assert p["targetPort"] in declared and declared[p["targetPort"]] == p["port"]

    worker = _container(deployments["skate-worker"])
    worker_args = _parse(worker["command"])
    assert not worker_args.head and worker_args.block
    host, port = worker_args.address.rsplit(":", 1)
    gcs = next(p for p in service["spec"]["ports"] if p["name"] == "gcs")
    assert (host, int(port)) == ("skate-head", gcs["port"]) and gcs["port"] == head_args.port

    for c in (head, worker):
        env = {e["name"]: e for e in c["env"]}
        ref = env["SKATE_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/dev/shm" in mounts  # the object store's arena must not be Docker's 64 MB
