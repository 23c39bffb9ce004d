"""Structure-aware fuzzing of every RPC of the control store and the node manager.

A caller with the token (so past the door the other tests check) sends each
method the right number of arguments, each drawn by hypothesis from values
shaped like the real ones (ids of 16 bytes, resource dicts, tuples, lists,
huge and negative numbers, odd strings) and others that are not. Every call
must come back -- a value or the server's exception, never a hang (methods
that wait by design, long polls, are allowed to time out) -- and afterwards
both daemons are alive, their memory grew by less than a bound, and the
cluster still runs a task and an actor.

``SKATE_FUZZ_EXAMPLES`` (default 25) sets the examples per method; the slow
stage's run uses more.
"""

import inspect
import os

import psutil
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from skate.cluster_utils import Cluster  # noqa: E402
from skate.core import rpc  # noqa: E402
from skate.core.control_store.server import ControlStore  # noqa: E402
from skate.core.node_manager.server import NodeManager  # noqa: E402
from skate.core.rpc import methods as m  # noqa: E402

pytestmark = pytest.mark.skate_only
EXAMPLES = int(os.environ.get("SKATE_FUZZ_EXAMPLES", "25"))
MAX_GROWTH_MB = 100
# by design: stops the daemon (tests/core checks it), or waits until something happens
NOT_FUZZED = {m.SHUTDOWN}
MAY_WAIT = {m.WAIT_ACTOR, m.WAIT_PLACEMENT_GROUP, m.REQUEST_LEASE, m.STORE_GET,
            m.PREPARE_BUNDLE, m.CREATE_PLACEMENT_GROUP, m.CANCEL_LEASE_REQUEST,
            m.REGISTER_WORKER, m.STORE_CREATE}

ids = st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=40),
                st.text(max_size=40))
numbers = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.floats(),
                    st.booleans())
scalars = st.one_of(st.none(), numbers, ids, st.text(max_size=200),
                    st.sampled_from(["CPU", "GPU", "SPREAD", "ALIVE", "", "*", "node:x"]))
resources = st.dictionaries(st.sampled_from(["CPU", "GPU", "memory", "x", ""]), numbers,
                            max_size=4)
values = st.recursive(st.one_of(scalars, resources),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.tuples(inner, inner),
                                              st.dictionaries(st.text(max_size=12), inner,
                                                              max_size=4)),
                      max_leaves=12)


def _arity(cls, method: str):
    """(required, optional) positional arguments of the handler of ``method``, or None."""
    fn = getattr(cls, "h_" + method, None)
    if fn is None:
        return None
    params = list(inspect.signature(fn).parameters.values())[3:]  # self, conn, rid
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return required, len(params) - required


def _targets():
    names = sorted(v for k, v in vars(m).items() if k.isupper() and isinstance(v, str))
    out = []
    for role, cls in (("control store", ControlStore), ("node manager", NodeManager)):
        for name in names:
            arity = _arity(cls, name)
            if arity is not None and name not in NOT_FUZZED:
                out.append(pytest.param(role, name, arity, id=f"{role}-{name}"))
    return out


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        yield c
    finally:
        c.shutdown()


def _daemons(cluster):
    """{role: psutil.Process} of the head's control store and node manager."""
    out = {}
    for p in psutil.Process().children(recursive=True):
        cmd = " ".join(p.cmdline())
        if cluster._session_dir in cmd or cluster._session_dir.split("/")[-1] in cmd:
            if "skate.core.control_store" in cmd:
                out["control store"] = p
            elif "skate.core.node_manager" in cmd:
                out["node manager"] = p
    return out


@pytest.fixture(scope="module")
def rss_before(cluster):
    return {role: p.memory_info().rss for role, p in _daemons(cluster).items()}


@pytest.mark.parametrize("role,method,arity", _targets())
def test_a_method_answers_whatever_it_is_sent(cluster, rss_before, role, method, arity):
    address = cluster.address if role == "control store" else cluster.head_node.address
    required, optional = arity

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(values, min_size=required, max_size=required + optional))
    def one(args):
        conn = rpc.connect(address, token=cluster.token, timeout=5)
        try:
            conn.call(method, *args, timeout=5)
        except rpc.ConnectionClosed:
            pytest.fail(f"{role} closed the connection on {method}{tuple(args)!r}")
        except TimeoutError:
            if method not in MAY_WAIT:
                pytest.fail(f"{role} never answered {method}{tuple(args)!r}")
        except Exception:  # noqa: BLE001 - the server's error for a bad call: fine
            pass
        finally:
            conn.close()

    one()
    daemons = _daemons(cluster)
    assert set(daemons) == {"control store", "node manager"}, "a daemon died"


def test_the_cluster_still_works_and_memory_stayed_bounded(cluster, rss_before):
    import skate

    daemons = _daemons(cluster)
    assert set(daemons) == {"control store", "node manager"}
    for role, p in daemons.items():
        grown = (p.memory_info().rss - rss_before[role]) / 2**20
        assert grown < MAX_GROWTH_MB, f"{role} grew by {grown:.0f} MB"
    skate.init(address=cluster.address)
    try:
        @skate.remote
        def add(a, b):
            return a + b

        @skate.remote
        class Echo:
            def echo(self, x):
                return x

        assert skate.get(add.remote(1, 2), timeout=60) == 3
        assert skate.get(Echo.remote().echo.remote("ok"), timeout=60) == "ok"
    finally:
        skate.shutdown()
