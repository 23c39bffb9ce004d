"""Stand-ins the scheduler tests share: a trial with the fields schedulers read, a result."""

import dataclasses


@dataclasses.dataclass(eq=False)
class FakeTrial:
    trial_id: str
    config: dict = dataclasses.field(default_factory=dict)
    status: str = "RUNNING"
    last_result: dict = dataclasses.field(default_factory=dict)
    checkpoint: object = None


def result(it, acc):
    """A result at iteration ``it`` with metric ``acc`` and the fields Tune always adds."""
    return {"training_iteration": it, "time_total_s": float(it), "time_this_iter_s": 1.0,
            "trial_id": "x", "acc": acc}
