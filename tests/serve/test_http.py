"""HTTP end to end: real requests on a real port through the proxy to replicas."""

import glob
import os
import time

import httpx
import pytest

import skate
from skate import serve
from tests.core.utils import wait_for_condition
from tests.serve.conftest import deployed

pytestmark = pytest.mark.skate_only
LIGHT = {"num_cpus": 0}


@serve.deployment(ray_actor_options=LIGHT)
class Kinds:
    def __call__(self, request):
        kind = request.query_params.get("kind")
        if kind == "bytes":
            return b"\x00\x01"
        if kind == "json":
            return {"path": request.url.path, "n": [1, 2]}
        if kind == "response":
            from starlette.responses import PlainTextResponse
            return PlainTextResponse("teapot", status_code=418, headers={"x-skate": "yes"})
        return f"hello {request.query_params.get('name', 'world')}"


@serve.deployment(ray_actor_options=LIGHT)
async def echo_body(request):
    body = await request.body()
    return {"method": request.method, "body": body.decode(), "root": request.scope["root_path"],
            "path": request.url.path}


def test_answers_of_every_kind(serve_url):
    with deployed(Kinds.bind(), "kinds"):
        assert httpx.get(f"{serve_url}/?name=skate").text == "hello skate"
        r = httpx.get(f"{serve_url}/?kind=bytes")
        assert r.content == b"\x00\x01"
        assert r.headers["content-type"] == "application/octet-stream"
        r = httpx.get(f"{serve_url}/x/y?kind=json")
        assert r.json() == {"path": "/x/y", "n": [1, 2]}
        r = httpx.get(f"{serve_url}/?kind=response")
        assert (r.status_code, r.text, r.headers["x-skate"]) == (418, "teapot", "yes")


def test_longest_prefix_routing_and_special_routes(serve_url):
    with deployed(Kinds.bind(), "root"), \
            deployed(echo_body.bind(), "api", route_prefix="/api"):
        assert httpx.get(f"{serve_url}/other").text == "hello world"
        r = httpx.post(f"{serve_url}/api/v1/items", content=b"payload")
        assert r.json() == {"method": "POST", "body": "payload", "root": "/api",
                            "path": "/api/v1/items"}
        assert httpx.get(f"{serve_url}/apix").text == "hello world"  # not under /api
        assert httpx.get(f"{serve_url}/-/healthz").text == "success"
        assert httpx.get(f"{serve_url}/-/routes").json() == {"/": "root", "/api": "api"}
    assert httpx.get(f"{serve_url}/-/routes").json() == {}
    assert httpx.get(f"{serve_url}/anything").status_code == 404


@serve.deployment(ray_actor_options=LIGHT)
class Broken:
    def __call__(self, request):
        raise ValueError("secret detail 12345")


def test_user_error_is_500_without_traceback_and_logged(serve_url):
    with deployed(Broken.bind(), "broken"):
        r = httpx.get(f"{serve_url}/")
        assert r.status_code == 500
        assert "secret detail" not in r.text and "Traceback" not in r.text
        log_dir = os.path.join(skate.get_runtime_context().get_log_dir(), "serve")

        def logged():
            for path in glob.glob(os.path.join(log_dir, "replica_broken_*.log")):
                text = open(path).read()
                if "ValueError: secret detail 12345" in text and "GET / 500" in text:
                    return True
            return False
        wait_for_condition(logged, timeout=10)
        # the replica and the proxy still serve
        assert httpx.get(f"{serve_url}/-/healthz").status_code == 200
        assert httpx.get(f"{serve_url}/").status_code == 500


@serve.deployment(ray_actor_options=LIGHT)
class Streamer:
    def __call__(self, request):
        n = int(request.query_params.get("n", "3"))

        def chunks():
            for i in range(n):
                yield f"chunk{i};"
                time.sleep(0.3)
        return chunks()


def test_generator_answer_streams_chunk_by_chunk(serve_url):
    with deployed(Streamer.bind(), "stream"):
        arrivals = []
        t0 = time.monotonic()
        with httpx.stream("GET", f"{serve_url}/?n=4") as r:
            for chunk in r.iter_text():
                arrivals.append((time.monotonic() - t0, chunk))
        assert "".join(c for _, c in arrivals) == "chunk0;chunk1;chunk2;chunk3;"
        # the first chunk arrived long before the last was produced (0.9 s later)
        assert arrivals[0][0] < arrivals[-1][0] - 0.5


def test_streaming_response_object(serve_url):
    from starlette.responses import StreamingResponse

    @serve.deployment(ray_actor_options=LIGHT)
    class Sse:
        async def __call__(self, request):
            async def events():
                for i in range(3):
                    yield f"data: {i}\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")

    with deployed(Sse.bind(), "sse"):
        r = httpx.get(f"{serve_url}/")
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


def test_fastapi_ingress_routes_path_params_and_models(serve_url):
    fastapi = pytest.importorskip("fastapi")
    from pydantic import BaseModel

    app = fastapi.FastAPI()

    class Item(BaseModel):
        name: str
        price: float

    @serve.deployment(ray_actor_options=LIGHT)
    @serve.ingress(app)
    class Shop:
        def __init__(self, tax):
            self.tax = tax

        @app.get("/items/{item_id}")
        def get_item(self, item_id: int, q: str = ""):
            return {"item_id": item_id, "q": q}

        @app.post("/price")
        async def price(self, item: Item):
            return {"name": item.name, "total": round(item.price * (1 + self.tax), 2)}

    with deployed(Shop.bind(0.5), "shop", route_prefix="/shop"):
        assert httpx.get(f"{serve_url}/shop/items/7?q=x").json() == {"item_id": 7, "q": "x"}
        r = httpx.post(f"{serve_url}/shop/price", json={"name": "pen", "price": 2.0})
        assert r.json() == {"name": "pen", "total": 3.0}
        assert httpx.get(f"{serve_url}/shop/items/notanint").status_code == 422
        assert httpx.post(f"{serve_url}/shop/price", json={"name": "pen"}).status_code == 422
        assert httpx.get(f"{serve_url}/shop/missing").status_code == 404


def test_starlette_ingress(serve_url):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    @serve.deployment(ray_actor_options=LIGHT)
    class Counter:
        def __init__(self):
            self.n = 0

        async def incr(self, request):
            self.n += int(request.path_params["by"])
            return JSONResponse({"n": self.n})

    web = Starlette(routes=[Route("/incr/{by}", Counter.func_or_class.incr)])
    Counted = serve.deployment(serve.ingress(web)(Counter.func_or_class), name="Counted",
                               ray_actor_options=LIGHT)
    with deployed(Counted.bind(), "counted"):
        assert httpx.get(f"{serve_url}/incr/2").json() == {"n": 2}
        assert httpx.get(f"{serve_url}/incr/3").json() == {"n": 5}


def test_malformed_http_gets_400_and_harms_nothing(serve_url):
    import socket

    with deployed(Kinds.bind(), "kinds2"):
        host, port = serve_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            reply = s.recv(1024)
        assert reply.startswith(b"HTTP/1.1 400")
        assert httpx.get(f"{serve_url}/").text == "hello world"


@serve.deployment(ray_actor_options=LIGHT, max_ongoing_requests=100)
class EchoId:
    async def __call__(self, request):
        return request.query_params["id"]


def test_concurrent_requests_each_get_their_own_answer(serve_url):
    import asyncio

    with deployed(EchoId.bind(), "echo_id"):
        async def burst():
            async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64)) as c:
                rs = await asyncio.gather(*(c.get(f"{serve_url}/?id={i}") for i in range(300)))
            return [r.text for r in rs]
        # requests coalesced into one replica call still get exactly their own answers
        assert asyncio.run(burst()) == [str(i) for i in range(300)]


@serve.deployment(ray_actor_options=LIGHT)
async def sometimes_fails(request):
    if request.query_params.get("fail"):
        raise RuntimeError("asked to fail")
    return "ok"


def test_requests_errors_latency_and_replicas_as_metrics(serve_url):
    from skate.util import metrics

    def series(name):
        fam = next((f for f in metrics.snapshot() if f["name"] == name), None)
        return [] if fam is None else [s for s in fam["samples"]
                                       if s["tags"].get("application") == "metered"]

    with deployed(sometimes_fails.bind(), "metered", route_prefix="/metered"):
        for _ in range(3):
            assert httpx.get(f"{serve_url}/metered").text == "ok"
        assert httpx.get(f"{serve_url}/metered?fail=1").status_code == 500

        def counted():
            (done,) = series("serve_deployment_request_counter")
            (errors,) = series("serve_deployment_error_counter")
            (latency,) = series("serve_deployment_processing_latency_ms")
            return done["value"] == 4 and errors["value"] == 1 and \
                latency["value"]["count"] == 4

        wait_for_condition(counted, timeout=15)
        (done,) = series("serve_deployment_request_counter")
        assert done["tags"]["deployment"] == "sometimes_fails"
        running = [s for s in series("serve_deployment_replicas")
                   if s["tags"]["state"] == "RUNNING"]
        assert [s["value"] for s in running] == [1.0]
