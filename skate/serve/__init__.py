"""skate.serve: HTTP model serving through actor replicas, with Ray Serve's API.

>>> from skate import serve
>>> @serve.deployment(num_replicas=1)
... class Greeter:
...     def __call__(self, request):
...         return f"hello {request.query_params.get('name', 'world')}"
>>> serve.start(http_options={"port": 0})   # any free port; the default is 8000
>>> handle = serve.run(Greeter.bind(), name="greeter", route_prefix="/greet")
>>> import httpx
>>> port = serve.status().proxy["port"]
>>> httpx.get(f"http://127.0.0.1:{port}/greet?name=skate").text
'hello skate'
>>> serve.shutdown()

A controller actor reconciles each deployment's replicas (actors) with its
target (:mod:`skate.serve.reconciler`, :mod:`skate.serve.autoscaling`); an
HTTP proxy (uvicorn) routes requests by route prefix; handles let
deployments call each other. See docs/serve.md.
"""

from skate.serve.api import (
    delete,
    deploy,
    get_app_handle,
    get_deployment_handle,
    get_multiplexed_model_id,
    get_replica_context,
    run,
    shutdown,
    start,
    status,
)
from skate.serve.autoscaling import AutoscalingConfig, AutoscalingPolicy
from skate.serve.batching import batch
from skate.serve.config import DeploymentConfig
from skate.serve.deployment import Application, Deployment, deployment
from skate.serve.handle import DeploymentHandle, DeploymentResponse, DeploymentResponseGenerator
from skate.serve.ingress import ingress
from skate.serve.multiplex import multiplexed
from skate.serve.reconciler import Reconciler, Target
from skate.serve.router import BackPressureError, RequestTimeoutError

__all__ = ["Application", "AutoscalingConfig", "AutoscalingPolicy", "BackPressureError",
           "Deployment", "DeploymentConfig", "DeploymentHandle", "DeploymentResponse",
           "DeploymentResponseGenerator", "Reconciler", "RequestTimeoutError", "Target", "batch",
           "delete", "deploy", "deployment", "get_app_handle", "get_deployment_handle",
           "get_multiplexed_model_id", "get_replica_context", "ingress", "multiplexed", "run",
           "shutdown", "start", "status"]
