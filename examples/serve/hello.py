"""serve.deploy: a class becomes an HTTP endpoint in one call.

Run: python examples/serve/hello.py
"""

import httpx

import skate
from skate import serve


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0})
class Greeter:
    def __init__(self, greeting: str):
        self.greeting = greeting

    def __call__(self, request):
        name = request.query_params.get("name", "world")
        return {"message": f"{self.greeting}, {name}!"}


def main():
    skate.init()
    serve.deploy(Greeter.bind("Hello"))            # http://127.0.0.1:8000/
    print(httpx.get("http://127.0.0.1:8000/", params={"name": "Skate"}).json())
    print(serve.status().applications["default"].deployments["Greeter"].replica_states)
    serve.shutdown()
    skate.shutdown()


if __name__ == "__main__":
    main()
