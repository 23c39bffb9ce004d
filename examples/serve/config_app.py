"""The application that examples/serve/config.yaml deploys: a greeter, set by its config.

The config file names it by import path; ``serve`` imports it, applies the
file's per-deployment settings (here ``user_config``, which reaches
``reconfigure``) and deploys it::

    serve run examples/serve/config.yaml          # in the foreground; Ctrl-C stops it
    curl 'http://127.0.0.1:8000/?name=skate'      # -> hello skate

    skate start --head                            # or keep it running on a cluster:
    serve deploy examples/serve/config.yaml
    serve status
    serve shutdown -y && skate stop

``build`` is an application builder: a config entry's ``args`` are passed to
it, as Ray Serve does.

Run: python examples/serve/config_app.py   (serves the same app in-process, once)
"""

from skate import serve


@serve.deployment(ray_actor_options={"num_cpus": 0.5})
class Greeter:
    def __init__(self, greeting: str = "hello"):
        self.greeting = greeting

    def reconfigure(self, config: dict) -> None:
        self.greeting = config.get("greeting", self.greeting)

    def __call__(self, request) -> str:
        return f"{self.greeting} {request.query_params.get('name', 'world')}"


app = Greeter.bind()


def build(args: dict):
    """An application builder: ``args`` comes from the config file (or ``serve run ... k=v``)."""
    return Greeter.bind(args.get("greeting", "hello"))


if __name__ == "__main__":
    import httpx

    serve.start(http_options={"host": "127.0.0.1", "port": 0})  # any free port
    serve.run(build({"greeting": "hi"}), name="greeter", route_prefix="/greet")
    port = serve.status().proxy["port"]
    print(httpx.get(f"http://127.0.0.1:{port}/greet?name=skate").text)  # -> hi skate
    serve.shutdown()
