"""Unit tests of the autoscaling policy: a pure state machine, time passed in."""

import pytest

from skate.serve.autoscaling import AutoscalingConfig, AutoscalingPolicy


def policy(**kw):
    base = dict(min_replicas=1, max_replicas=10, target_ongoing_requests=2,
                upscale_delay_s=5, downscale_delay_s=20, look_back_period_s=10)
    base.update(kw)
    return AutoscalingPolicy(AutoscalingConfig(**base))


def run(p, current, samples):
    """Feed (time, ongoing) samples; apply each decision; return the counts decided."""
    out = []
    for now, ongoing in samples:
        p.observe(now, ongoing)
        current = p.decide(now, current)
        out.append(current)
    return out


def test_scales_up_only_after_the_load_lasted_the_upscale_delay():
    p = policy()
    counts = run(p, 1, [(t, 8) for t in range(0, 7)])
    assert counts == [1, 1, 1, 1, 1, 4, 4]  # 8 ongoing / 2 per replica, from t=5


def test_a_burst_shorter_than_the_delay_changes_nothing():
    p = policy(look_back_period_s=1)
    counts = run(p, 1, [(0, 8), (2, 8), (4, 0), (6, 8), (8, 0), (10, 0)])
    assert counts == [1] * 6


def test_scales_down_after_the_downscale_delay_never_below_min():
    p = policy(min_replicas=2, look_back_period_s=1)
    counts = run(p, 6, [(t, 0) for t in range(0, 25, 5)])
    assert counts == [6, 6, 6, 6, 2]


def test_load_is_averaged_over_the_look_back_window():
    p = policy(upscale_delay_s=0, look_back_period_s=10)
    p.observe(0, 0)
    p.observe(1, 12)
    assert p.load() == 6
    assert p.decide(1, 1) == 3
    p.observe(12, 12)  # both older samples left the window
    assert p.load() == 12


def test_clamped_to_max_replicas():
    p = policy(max_replicas=3, upscale_delay_s=0)
    assert run(p, 1, [(0, 100)]) == [3]


def test_scale_from_zero_is_immediate_and_to_zero_waits_its_delay():
    p = policy(min_replicas=0, downscale_delay_s=20, downscale_to_zero_delay_s=50,
               look_back_period_s=1)
    assert run(p, 0, [(0, 1)]) == [1]  # a request waits: no upscale delay
    counts = run(p, 3, [(t, 0) for t in range(10, 140, 10)])
    # 3 -> 1 after the downscale delay (20 s), then the last one after 50 s more
    assert counts == [3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]


def test_smoothing_factors_move_part_of_the_way():
    p = policy(upscale_delay_s=0, upscaling_factor=0.5)
    assert run(p, 2, [(0, 20)]) == [6]  # wants 10: moves half of 8


def test_a_change_of_direction_restarts_the_delay():
    p = policy(look_back_period_s=1)
    counts = run(p, 2, [(0, 20), (4, 0), (6, 20), (10, 20), (11, 20)])
    assert counts == [2, 2, 2, 2, 10]  # the up streak restarted at 6


def test_initial_replicas():
    assert AutoscalingConfig(min_replicas=1, max_replicas=5).start_replicas() == 1
    assert AutoscalingConfig(min_replicas=1, max_replicas=5, initial_replicas=3) \
        .start_replicas() == 3


@pytest.mark.parametrize("bad, match", [
    ({"min_replicas": -1}, "min_replicas"),
    ({"min_replicas": 3, "max_replicas": 2}, "above"),
    ({"max_replicas": 0}, "max_replicas"),
    ({"target_ongoing_requests": 0}, "target_ongoing_requests"),
    ({"upscale_delay_s": -1}, "upscale_delay_s"),
    ({"initial_replicas": 9, "max_replicas": 2}, "initial_replicas"),
    ({"max_replica": 3}, "unknown key"),
])
def test_bad_configs_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        AutoscalingConfig.from_dict(bad)


def test_negative_load_is_refused():
    with pytest.raises(ValueError):
        policy().observe(0, -1)
