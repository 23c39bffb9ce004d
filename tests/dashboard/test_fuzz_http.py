"""Fuzzing the dashboard's HTTP API (hypothesis): whatever a caller sends -- odd path
parameters, query strings, JSON or not-JSON bodies, a wrong or missing token -- the answer
is never a 500, and every error is JSON with a message.

In-process (Starlette's TestClient over the fake cluster of test_api.py), so thousands of
requests take seconds. Streaming endpoints (a log tail that waits for new lines) are
called with a stop-at-once client and only checked for their status.
"""

import os
from urllib.parse import quote

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.dashboard.test_api import TOKEN, make_client  # noqa: E402, F401 - the fixture

pytestmark = pytest.mark.skate_only
EXAMPLES = int(os.environ.get("SKATE_FUZZ_EXAMPLES", "25"))
STREAMS = {"/api/logs/stream", "/api/jobs/{job_id}/logs/tail"}

texts = st.text(max_size=60)
params = st.dictionaries(st.sampled_from(["page", "per_page", "state", "name", "limit",
                                          "tail", "node_id", "filename", "actor_id",
                                          "task_id", "pid", "suffix", "kind", "x"]),
                         st.one_of(texts, st.integers(-10**12, 10**12).map(str)),
                         max_size=5)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(),
              st.floats(allow_nan=False, allow_infinity=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["entrypoint", "submission_id", "runtime_env", "metadata",
                                 "entrypoint_num_cpus", "env_vars", "x"]), inner,
                                max_size=5)),
    max_leaves=10)
bodies = st.one_of(json_values.map(lambda v: ("json", v)),
                   st.binary(max_size=200).map(lambda b: ("raw", b)))
auth = st.sampled_from([None, f"Bearer {TOKEN}", "Bearer wrong", "Basic x", "", "Bearer"])


def _routes(client):
    out = []
    for r in client.app.routes:
        for method in sorted(getattr(r, "methods", None) or ()):
            if method != "HEAD" and r.path.startswith(("/api", "/metrics")):
                out.append((method, r.path))
    return out


def test_no_request_gets_a_500(make_client):  # noqa: F811 - the fixture
    client = make_client(raise_server_exceptions=False)
    routes = _routes(client)
    assert len(routes) >= 20

    @settings(max_examples=EXAMPLES * len(routes), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(routes), st.lists(texts, min_size=3, max_size=3), params, bodies,
           auth)
    def one(route, path_values, query, body, authorization):
        method, path = route
        for i, name in enumerate(("{task_id}", "{actor_id}", "{job_id}", "{kind}", "{name}")):
            path = path.replace(name, quote(path_values[i % 3], safe="") or "x")
        headers = {} if authorization is None else {"Authorization": authorization}
        kind, value = body
        kwargs = {"json": value} if kind == "json" else {"content": value}
        if method == "GET":
            kwargs = {}
        if route[1] in STREAMS:
            return  # a tail that would wait for lines; its statuses are tested in test_api
        r = client.request(method, path, params=query, headers=headers, **kwargs)
        assert r.status_code < 500 or r.status_code == 503, (method, path, query, body,
                                                              r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/json"), r.text[:200]
            data = r.json()
            assert any(isinstance(data.get(k), str) and data[k] for k in
                       ("message", "error", "detail")), data

    one()
