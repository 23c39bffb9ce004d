"""Replicas under change and failure: kill -9, rolling updates under load, user_config,
health checks, autoscaling (to zero and back), backpressure (503) and timeouts (408)."""

import asyncio
import os
import signal
import threading
import time

import httpx
import pytest

from skate import serve
from tests.core.utils import wait_for_condition
from tests.serve.conftest import deployed

pytestmark = pytest.mark.skate_only
LIGHT = {"num_cpus": 0}
FAST_STOP = {"graceful_shutdown_wait_loop_s": 0.1, "graceful_shutdown_timeout_s": 5}


class Load:
    """Clients sending requests in a loop, recording (status, body) of every answer."""

    def __init__(self, url, clients=2):
        self.url, self.results, self.errors = url, [], []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        with httpx.Client(timeout=30) as c:
            while not self._stop.is_set():
                try:
                    r = c.get(self.url)
                    self.results.append((r.status_code, r.text))
                except httpx.HTTPError as e:
                    self.errors.append(repr(e))

    def __enter__(self):
        for t in self._threads:
            t.start()
        wait_for_condition(lambda: len(self.results) > 20, timeout=30)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def since(self, n):
        return self.results[n:]


def _running(app, dep, n):
    d = serve.status().applications[app].deployments[dep]
    return d.replica_states == {"RUNNING": n} and d.status == "HEALTHY"


def _versioned(text):
    @serve.deployment(num_replicas=2, ray_actor_options=LIGHT, **FAST_STOP)
    class Versioned:
        def __call__(self, request):
            return f"{text}:{os.getpid()}"
    return Versioned


def test_rolling_update_under_load_fails_no_request(serve_url):
    with deployed(_versioned("v1").bind(), "rolling"):
        with Load(serve_url) as load:
            serve.run(_versioned("v2").bind(), name="rolling")  # new code: replicas roll
            mark = len(load.results)
            wait_for_condition(lambda: len(load.since(mark)) > 50 and
                               all(b.startswith("v2") for _, b in load.results[-20:]),
                               timeout=30)
        assert load.errors == []
        assert {s for s, _ in load.results} == {200}
        versions = [b.split(":")[0] for _, b in load.results]
        assert set(versions) == {"v1", "v2"}
        assert _running("rolling", "Versioned", 2)


@serve.deployment(num_replicas=2, ray_actor_options=LIGHT, **FAST_STOP)
class Pids:
    def __call__(self, request):
        return str(os.getpid())


def test_replica_killed_under_load_is_replaced(serve_url):
    with deployed(Pids.bind(), "killed"):
        with Load(serve_url) as load:
            wait_for_condition(lambda: len({int(b) for _, b in load.results[-30:]}) == 2,
                               timeout=20)
            victim = int(load.results[-1][1])
            mark = len(load.results)
            os.kill(victim, signal.SIGKILL)
            wait_for_condition(lambda: _running("killed", "Pids", 2), timeout=30)

            def both_serve():
                recent = load.results[-30:]
                pids = {int(b) for s, b in recent if s == 200}
                return len(pids) == 2 and victim not in pids and len(recent) == 30
            wait_for_condition(both_serve, timeout=30)
        after = load.since(mark)
        failed = [s for s, _ in after if s != 200]
        assert len(failed) <= 2 and set(failed) <= {500, 503}  # only requests in flight
        assert all(s == 200 for s, _ in after[-30:])
        assert load.errors == []


def test_user_config_reconfigures_without_restart(serve_url):
    @serve.deployment(ray_actor_options=LIGHT, user_config={"greeting": "hi"})
    class Greeter:
        def reconfigure(self, config):
            self.greeting = config["greeting"]

        def __call__(self, request):
            return f"{self.greeting}:{os.getpid()}"

    with deployed(Greeter.bind(), "greeter"):
        greeting, pid = httpx.get(serve_url).text.split(":")
        assert greeting == "hi"
        serve.run(Greeter.options(user_config={"greeting": "hey"}).bind(), name="greeter")
        wait_for_condition(lambda: httpx.get(serve_url).text.startswith("hey:"), timeout=20)
        assert httpx.get(serve_url).text == f"hey:{pid}"


def test_failed_health_check_replaces_replica(serve_url):
    @serve.deployment(ray_actor_options=LIGHT, health_check_period_s=0.2,
                      health_check_timeout_s=2, **FAST_STOP)
    class Flaky:
        def __init__(self):
            self.sick = False

        def check_health(self):
            if self.sick:
                raise RuntimeError("sick")

        def __call__(self, request):
            if request.query_params.get("sicken"):
                self.sick = True
            return str(os.getpid())

    with deployed(Flaky.bind(), "flaky"):
        pid = httpx.get(f"{serve_url}/?sicken=1").text
        wait_for_condition(lambda: httpx.get(serve_url).text not in (pid, ""), timeout=20)
        wait_for_condition(lambda: _running("flaky", "Flaky", 1), timeout=20)


def test_autoscaling_from_zero_up_and_back_to_zero(serve_url):
    @serve.deployment(ray_actor_options=LIGHT, max_ongoing_requests=2, **FAST_STOP,
                      autoscaling_config={"min_replicas": 0, "max_replicas": 3,
                                          "target_ongoing_requests": 1,
                                          "upscale_delay_s": 0.3, "downscale_delay_s": 1.0,
                                          "look_back_period_s": 0.5})
    class Slow:
        async def __call__(self, request):
            await asyncio.sleep(0.3)
            return "done"

    def replicas():
        return serve.status().applications["auto"].deployments["Slow"].replica_states

    with deployed(Slow.bind(), "auto", route_prefix="/auto"):
        assert replicas() == {}
        t0 = time.monotonic()
        assert httpx.get(f"{serve_url}/auto", timeout=30).text == "done"  # waits for one
        assert time.monotonic() - t0 < 15
        stop = threading.Event()

        def client():
            with httpx.Client(timeout=30) as c:
                while not stop.is_set():
                    assert c.get(f"{serve_url}/auto").status_code == 200
        threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            wait_for_condition(lambda: replicas().get("RUNNING") == 3, timeout=30)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        wait_for_condition(lambda: replicas() == {}, timeout=30)


def test_backpressure_503_and_timeout_408(serve_url):
    @serve.deployment(ray_actor_options=LIGHT, max_ongoing_requests=1, max_queued_requests=1)
    class Busy:
        async def __call__(self, request):
            await asyncio.sleep(1.5)
            return "ok"

    @serve.deployment(ray_actor_options=LIGHT, request_timeout_s=0.5)
    class TooSlow:
        async def __call__(self, request):
            await asyncio.sleep(3)
            return "late"

    with deployed(Busy.bind(), "busy", route_prefix="/busy"), \
            deployed(TooSlow.bind(), "slow", route_prefix="/slow"):
        async def burst():
            async with httpx.AsyncClient(timeout=30) as c:
                first = asyncio.ensure_future(c.get(f"{serve_url}/busy"))
                await asyncio.sleep(0.3)  # the first one runs
                second = asyncio.ensure_future(c.get(f"{serve_url}/busy"))
                await asyncio.sleep(0.3)  # the second one waits in the queue
                t0 = time.monotonic()
                rest = await asyncio.gather(*(c.get(f"{serve_url}/busy") for _ in range(3)))
                quick = time.monotonic() - t0
                return (await first).status_code, (await second).status_code, \
                    [r.status_code for r in rest], quick
        first, second, rest, quick = asyncio.run(burst())
        assert (first, second, rest) == (200, 200, [503, 503, 503])
        assert quick < 1.0  # refused at once, not queued
        t0 = time.monotonic()
        r = httpx.get(f"{serve_url}/slow", timeout=30)
        assert r.status_code == 408 and time.monotonic() - t0 < 2.5
        assert httpx.get(f"{serve_url}/busy", timeout=30).text == "ok"
