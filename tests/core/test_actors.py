"""Actors: creation, ordering, handles, names, concurrency, death & restart."""

import asyncio
import os
import signal
import threading

import pytest

import skate
from skate.exceptions import ActorDiedError, RayActorError, RayTaskError
from tests.core.utils import rendezvous, touch, wait_for_condition, wait_for_file

CLUSTER = {"num_cpus": 2, "resources": {"custom": 2}}


@pytest.fixture
def cluster(start_cluster):
    return start_cluster(**CLUSTER)


@skate.remote
class Counter:
    def __init__(self, start=0, step=1):
        self.value = start
        self.step = step

    def inc(self):
        self.value += self.step
        return self.value

    def get(self):
        return self.value

    def pid(self):
        return os.getpid()


@skate.remote
class Log:
    def __init__(self):
        self.items = []

    def append(self, x):
        self.items.append(x)

    def items_(self):
        return list(self.items)


def _calls_fail_with(call, exc_type):
    """Predicate for wait_for_condition: ``call()`` raises ``exc_type``."""

    def pred():
        try:
            call()
        except exc_type:
            return True
        return False

    return pred


# ------------------------------------------------------------------- basics
def test_actor_creation_with_args(cluster):
    c = Counter.remote(10, step=5)
    assert skate.get(c.inc.remote()) == 15
    assert skate.get(c.inc.remote()) == 20
    d = Counter.remote()
    assert skate.get(d.inc.remote()) == 1
    assert skate.get(c.get.remote()) == 20  # independent state
    # The actor runs in its own process.
    assert skate.get(c.pid.remote()) != os.getpid()
    assert skate.get(c.pid.remote()) != skate.get(d.pid.remote())


def test_actor_args_can_be_refs(cluster):
    c = Counter.remote(skate.put(100), step=skate.put(2))
    assert skate.get(c.inc.remote()) == 102


def test_method_calls_ordered(cluster):
    log = Log.remote()
    for i in range(200):
        log.append.remote(i)  # fire and forget
    assert skate.get(log.items_.remote()) == list(range(200))


def test_direct_instantiation_and_call_raise(cluster):
    with pytest.raises(TypeError):
        Counter()
    c = Counter.remote()
    with pytest.raises(TypeError):
        c.inc()
    with pytest.raises(AttributeError):
        c.no_such_method.remote()


def test_handle_passed_to_tasks(cluster):
    c = Counter.remote()

    @skate.remote
    def bump(counter, n):
        return skate.get([counter.inc.remote() for _ in range(n)])[-1]

    skate.get([bump.remote(c, 5) for _ in range(4)])
    assert skate.get(c.get.remote()) == 20


def test_handle_passed_to_actor(cluster):
    c = Counter.remote()

    @skate.remote
    class User:
        def __init__(self, counter):
            self.counter = counter

        def use(self, n):
            for _ in range(n):
                skate.get(self.counter.inc.remote())
            return skate.get(self.counter.get.remote())

        def use_passed(self, other):
            return skate.get(other.inc.remote())

    u = User.remote(c)
    assert skate.get(u.use.remote(3)) == 3
    assert skate.get(u.use_passed.remote(c)) == 4
    assert skate.get(c.get.remote()) == 4


def test_handle_returned_from_task(cluster):
    @skate.remote
    def make():
        return Counter.remote(7)

    c = skate.get(make.remote())
    assert skate.get(c.inc.remote()) == 8


def test_method_exception_keeps_actor_alive(cluster):
    @skate.remote
    class Flaky:
        def __init__(self):
            self.n = 0

        def boom(self):
            self.n += 1
            raise ValueError("method-boom")

        def count(self):
            return self.n

    a = Flaky.remote()
    with pytest.raises(ValueError, match="method-boom") as info:
        skate.get(a.boom.remote())
    assert isinstance(info.value, RayTaskError)
    assert skate.get(a.count.remote()) == 1


def test_constructor_failure(cluster):
    @skate.remote
    class Bad:
        def __init__(self):
            raise ValueError("ctor-boom")

        def m(self):
            return 1

    b = Bad.remote()
    with pytest.raises(ActorDiedError, match="ctor-boom"):
        skate.get(b.m.remote())


def test_method_num_returns(cluster):
    @skate.remote
    class M:
        @skate.method(num_returns=2)
        def two(self):
            return "a", "b"

        def one(self):
            return "a", "b"

    m = M.remote()
    a, b = m.two.remote()
    assert skate.get([a, b]) == ["a", "b"]
    assert skate.get(m.one.remote()) == ("a", "b")
    r1, r2 = m.one.options(num_returns=2).remote()
    assert skate.get(r1) == "a" and skate.get(r2) == "b"


# -------------------------------------------------------------------- names
def test_named_actor_and_get_actor(cluster):
    c = Counter.options(name="test_named_counter").remote()
    try:
        assert skate.get(c.inc.remote()) == 1
        same = skate.get_actor("test_named_counter")
        assert skate.get(same.inc.remote()) == 2
        with pytest.raises(ValueError):
            Counter.options(name="test_named_counter").remote()
        with pytest.raises(ValueError):
            skate.get_actor("no_such_actor")
    finally:
        skate.kill(c)
    # The name is released once the actor is dead.
    wait_for_condition(_calls_fail_with(lambda: skate.get_actor("test_named_counter"), ValueError))
    c2 = Counter.options(name="test_named_counter").remote()
    assert skate.get(c2.get.remote()) == 0
    skate.kill(c2)


def test_named_actor_from_task(cluster):
    c = Counter.options(name="test_from_task").remote()

    @skate.remote
    def use():
        return skate.get(skate.get_actor("test_from_task").inc.remote())

    try:
        assert skate.get(use.remote()) == 1
        assert skate.get(c.get.remote()) == 1
    finally:
        skate.kill(c)


def test_namespaces(cluster):
    a = Counter.options(name="shared_name", namespace="ns_a").remote(100)
    b = Counter.options(name="shared_name", namespace="ns_b").remote(200)
    try:
        assert skate.get(skate.get_actor("shared_name", namespace="ns_a").get.remote()) == 100
        assert skate.get(skate.get_actor("shared_name", namespace="ns_b").get.remote()) == 200
        # Not visible from the driver's own (anonymous) namespace.
        with pytest.raises(ValueError):
            skate.get_actor("shared_name")
        with pytest.raises(ValueError):
            skate.get_actor("shared_name", namespace="ns_c")
    finally:
        skate.kill(a)
        skate.kill(b)


def test_get_if_exists(cluster):
    c1 = Counter.options(name="gie", get_if_exists=True).remote(5)
    try:
        assert skate.get(c1.inc.remote()) == 6
        # Constructor args of the second call are ignored: same actor.
        c2 = Counter.options(name="gie", get_if_exists=True).remote(1000)
        assert skate.get(c2.inc.remote()) == 7
        assert skate.get(c1.get.remote()) == 7
    finally:
        skate.kill(c1)


def test_detached_lifetime(cluster):
    d = Counter.options(name="detached_counter", lifetime="detached").remote()
    try:
        assert skate.get(d.inc.remote()) == 1
        assert skate.get(skate.get_actor("detached_counter").inc.remote()) == 2
    finally:
        skate.kill(d)
    with pytest.raises(ValueError):
        Counter.options(lifetime="forever").remote()


# -------------------------------------------------------------- concurrency
def test_threaded_actor_max_concurrency(cluster):
    @skate.remote(max_concurrency=3)
    class Threaded:
        def __init__(self):
            self.barrier = threading.Barrier(3, timeout=30)

        def meet(self):
            # Only returns once 3 calls are inside the actor at once.
            return self.barrier.wait()

    t = Threaded.remote()
    assert sorted(skate.get([t.meet.remote() for _ in range(3)], timeout=60)) == [0, 1, 2]


def test_threaded_actor_event(cluster):
    @skate.remote(max_concurrency=2)
    class Gate:
        def __init__(self):
            self.event = threading.Event()

        def wait(self):
            return self.event.wait(timeout=30)

        def open(self):
            self.event.set()
            return "opened"

    g = Gate.remote()
    waiting = g.wait.remote()
    assert skate.get(g.open.remote(), timeout=30) == "opened"
    assert skate.get(waiting, timeout=30) is True


def test_async_actor_methods_run_concurrently(cluster):
    @skate.remote
    class AsyncGate:
        def __init__(self):
            self.event = asyncio.Event()
            self.waiters = 0

        async def wait(self):
            self.waiters += 1
            await asyncio.wait_for(self.event.wait(), timeout=30)
            return "woke"

        async def open(self):
            self.event.set()
            return "opened"

        async def num_waiters(self):
            return self.waiters

    g = AsyncGate.remote()
    waiting = [g.wait.remote() for _ in range(20)]
    wait_for_condition(lambda: skate.get(g.num_waiters.remote()) == 20)
    ready, _ = skate.wait(waiting, timeout=0.1)
    assert ready == []
    assert skate.get(g.open.remote(), timeout=30) == "opened"
    assert skate.get(waiting, timeout=30) == ["woke"] * 20


def test_async_actor_max_concurrency_limit(cluster, tmp_path):
    @skate.remote(max_concurrency=2)
    class Limited:
        def __init__(self):
            self.active = 0
            self.peak = 0

        async def work(self, entered_dir, i, release):
            self.active += 1
            self.peak = max(self.peak, self.active)
            touch(os.path.join(entered_dir, str(i)))
            while not os.path.exists(release):
                await asyncio.sleep(0.01)
            self.active -= 1
            return i

        async def peak_(self):
            return self.peak

    lim = Limited.remote()
    entered = tmp_path / "entered"
    entered.mkdir()
    release = str(tmp_path / "release")
    refs = [lim.work.remote(str(entered), i, release) for i in range(4)]
    wait_for_condition(lambda: len(os.listdir(entered)) == 2)
    ready, _ = skate.wait(refs, timeout=0.5)
    assert ready == []
    assert len(os.listdir(entered)) == 2  # the other calls wait for a slot
    touch(release)
    assert skate.get(refs, timeout=30) == [0, 1, 2, 3]
    assert skate.get(lim.peak_.remote()) == 2


# -------------------------------------------------------------- resources
def test_default_actors_do_not_hold_cpus(cluster):
    # Ray semantics: an actor needs 1 CPU to be scheduled but holds 0 while
    # alive, so more default actors than CPUs can be alive at once.
    actors = [Counter.remote() for _ in range(4)]
    assert len(set(skate.get([a.pid.remote() for a in actors], timeout=60))) == 4
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 2)
    for a in actors:
        skate.kill(a)


def test_actor_resources(cluster):
    @skate.remote(num_cpus=1, resources={"custom": 1})
    class Holder:
        def assigned(self):
            return skate.get_runtime_context().get_assigned_resources()

    h = Holder.remote()
    assert skate.get(h.assigned.remote()) == {"CPU": 1.0, "custom": 1.0}
    wait_for_condition(
        lambda: skate.available_resources().get("CPU", 0) == 1
        and skate.available_resources().get("custom", 0) == 1
    )
    h2 = Holder.options(resources={"custom": 1}, num_cpus=1).remote()
    skate.get(h2.assigned.remote())
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 0)
    # A third one does not fit: it stays pending.
    h3 = Holder.remote()
    ready, _ = skate.wait([h3.assigned.remote()], timeout=0.5)
    assert ready == []
    skate.kill(h)
    # ... and gets scheduled once resources are freed.
    assert skate.get(h3.assigned.remote(), timeout=60) == {"CPU": 1.0, "custom": 1.0}
    skate.kill(h2)
    skate.kill(h3)
    wait_for_condition(
        lambda: skate.available_resources().get("CPU", 0) == 2
        and skate.available_resources().get("custom", 0) == 2
    )


def test_fractional_actors_share_cpu(cluster, tmp_path):
    @skate.remote(num_cpus=0.5)
    class Half:
        def meet(self, d, i):
            return rendezvous(d, str(i), 4)

    actors = [Half.remote() for _ in range(4)]
    rdv = str(tmp_path / "rdv")
    assert skate.get([a.meet.remote(rdv, i) for i, a in enumerate(actors)], timeout=60) == [4] * 4
    for a in actors:
        skate.kill(a)


# ------------------------------------------------------------ death/restart
def test_exit_actor(cluster):
    @skate.remote
    class Quitter:
        def ping(self):
            return "pong"

        def quit(self):
            skate.actor.exit_actor()

    q = Quitter.remote()
    assert skate.get(q.ping.remote()) == "pong"
    with pytest.raises(RayActorError):
        skate.get(q.quit.remote())
    with pytest.raises(ActorDiedError):
        skate.get(q.ping.remote())


def test_exit_actor_outside_actor_raises(cluster):
    with pytest.raises(TypeError):
        skate.actor.exit_actor()


def test_kill(cluster, tmp_path):
    release = str(tmp_path / "never")

    @skate.remote(num_cpus=1)
    class Victim:
        def ping(self):
            return "pong"

        def block(self, path):
            wait_for_file(path, timeout=60)

    v = Victim.remote()
    assert skate.get(v.ping.remote()) == "pong"
    in_flight = v.block.remote(release)
    skate.kill(v)
    with pytest.raises(ActorDiedError):
        skate.get(in_flight, timeout=30)
    with pytest.raises(ActorDiedError):
        skate.get(v.ping.remote(), timeout=30)
    wait_for_condition(lambda: skate.available_resources().get("CPU", 0) == 2)


def test_kill_non_actor_raises(cluster):
    with pytest.raises(ValueError):
        skate.kill(skate.put(1))


def test_kill_with_restart(cluster):
    c = Counter.options(max_restarts=1).remote()
    pid1 = skate.get(c.pid.remote())
    assert skate.get(c.inc.remote()) == 1
    skate.kill(c, no_restart=False)

    def restarted():
        try:
            return skate.get(c.pid.remote(), timeout=10) != pid1
        except RayActorError:  # e.g. ActorUnavailableError while restarting
            return False

    wait_for_condition(restarted, timeout=30)
    # State was rebuilt by re-running the constructor.
    assert skate.get(c.inc.remote()) == 1
    # The single restart is used up: the next kill is final.
    skate.kill(c, no_restart=False)
    wait_for_condition(_calls_fail_with(lambda: skate.get(c.pid.remote()), ActorDiedError), 30)


def test_sigkill_actor_restarts(cluster):
    c = Counter.options(max_restarts=1, max_task_retries=2).remote(0)
    pid1 = skate.get(c.pid.remote())
    skate.get(c.inc.remote())
    os.kill(pid1, signal.SIGKILL)
    # The call is retried on the restarted actor instead of failing.
    pid2 = skate.get(c.pid.remote(), timeout=60)
    assert pid2 != pid1
    assert skate.get(c.inc.remote()) == 1  # fresh state


def test_sigkill_actor_no_restart(cluster):
    c = Counter.options(max_restarts=0).remote()
    pid = skate.get(c.pid.remote())
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ActorDiedError):
        skate.get(c.pid.remote(), timeout=60)
    with pytest.raises(ActorDiedError):
        skate.get(c.inc.remote(), timeout=60)


def test_os_exit_in_method_no_restart(cluster):
    @skate.remote(max_restarts=0)
    class Exiter:
        def die(self):
            os._exit(1)

        def ping(self):
            return "pong"

    e = Exiter.remote()
    assert skate.get(e.ping.remote()) == "pong"
    with pytest.raises(ActorDiedError):
        skate.get(e.die.remote(), timeout=60)
    with pytest.raises(ActorDiedError):
        skate.get(e.ping.remote(), timeout=60)


def test_os_exit_in_method_restart_and_retry(cluster, tmp_path):
    marker = str(tmp_path / "died_once")

    @skate.remote(max_restarts=1, max_task_retries=1)
    class DiesOnce:
        def maybe_die(self, path):
            if not os.path.exists(path):
                touch(path)
                os._exit(1)
            return "survived"

    d = DiesOnce.remote()
    assert skate.get(d.maybe_die.remote(marker), timeout=60) == "survived"
    assert os.path.exists(marker)


def test_os_exit_restart_without_task_retry(cluster, tmp_path):
    marker = str(tmp_path / "died_once")

    @skate.remote(max_restarts=1)
    class DiesOnce:
        def maybe_die(self, path):
            if not os.path.exists(path):
                touch(path)
                os._exit(1)
            return "survived"

        def ping(self):
            return "pong"

    d = DiesOnce.remote()
    # max_task_retries defaults to 0: the call that killed the actor fails
    # (ActorUnavailableError / ActorDiedError, both RayActorError) ...
    with pytest.raises(RayActorError):
        skate.get(d.maybe_die.remote(marker), timeout=60)

    # ... but the actor itself is restarted.
    def alive():
        try:
            return skate.get(d.ping.remote(), timeout=10) == "pong"
        except RayActorError:
            return False

    wait_for_condition(alive, timeout=30)
