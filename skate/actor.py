"""Actor helpers with Ray's names: ``skate.actor.exit_actor()``, ``ActorHandle``, ``ActorClass``."""

from skate.core.actor import ActorClass, ActorHandle, ActorMethod, exit_actor

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor"]
