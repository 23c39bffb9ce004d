"""skate.serve: HTTP model serving through actor replicas, with Ray Serve's API.

Being built (issue "skate.serve"). Landed so far: the two pure state
machines the controller will drive — the autoscaling policy
(:mod:`skate.serve.autoscaling`) and the per-deployment replica reconciler
(:mod:`skate.serve.reconciler`). ``serve.deployment``, ``serve.run`` and the
HTTP proxy are not here yet.
"""

from skate.serve.autoscaling import AutoscalingConfig, AutoscalingPolicy
from skate.serve.reconciler import Reconciler, Target

__all__ = ["AutoscalingConfig", "AutoscalingPolicy", "Reconciler", "Target"]
