"""The link to a server that restarts: calls wait it out, calls in flight are sent again,
the caller registers again first, and past the timeout it gives up, clearly."""

import threading

import pytest

from skate.core import rpc
from skate.core.rpc.reconnecting import ReconnectingConnection, Refused
from tests.core.utils import wait_for_condition

pytestmark = pytest.mark.skate_only


class Server:
    """A listener on one address that can be stopped and started again, as a restarted
    control store; ``seen`` is every request it got, by method."""

    def __init__(self, address):
        self.address = address
        self.seen = []
        self.deferred = []
        self.listener = None
        self.start()

    def handle(self, conn, method, args, rid):
        self.seen.append(method)
        if method == "later":
            self.deferred.append((conn, rid))
            return rpc.DEFER
        return (method, args)

    def start(self):
        self.listener = rpc.Listener(self.address, self.handle)

    def stop(self):
        # as a killed server: every connection made to it is closed (an in-process listener
        # closed before it accepted one would leave that one hanging: wait for it)
        wait_for_condition(lambda: self.listener.connections, timeout=30)
        self.listener.close()

    def close(self):
        self.listener.close()


@pytest.fixture
def server(tmp_path):
    s = Server(f"unix:{tmp_path}/s.sock")
    yield s
    s.close()


def test_a_call_while_the_server_is_down_waits_for_it(server):
    rejoined = []
    link = ReconnectingConnection(server.address, timeout_s=10,
                                  on_reconnect=lambda c: rejoined.append(c.call("hello")))
    try:
        assert link.call("echo", 1) == ("echo", (1,))
        server.stop()
        wait_for_condition(lambda: not link.up)
        assert link.notify("echo") is False  # one-way messages while down are dropped
        answer = []
        caller = threading.Thread(target=lambda: answer.append(link.call("echo", 2)))
        caller.start()
        server.start()
        caller.join(30)
        assert answer == [("echo", (2,))], server.seen
        assert rejoined == [("hello", ())]  # registered again before anything else went
        assert server.seen[-2:] == ["hello", "echo"]
        assert link.up and not link.closed
    finally:
        link.close()


def test_an_async_call_in_flight_is_sent_again_on_the_next_connection(server):
    link = ReconnectingConnection(server.address, timeout_s=10)
    got = []
    done = threading.Event()
    try:
        link.call("hello")  # registered: a drop from now on is a restart
        link.call_async("later", callback=lambda ok, v: (got.append((ok, v)), done.set()))
        wait_for_condition(lambda: len(server.deferred) == 1)
        server.stop()  # its answer never comes
        server.start()
        wait_for_condition(lambda: len(server.deferred) == 2)  # asked again
        conn, rid = server.deferred[1]
        conn.reply(rid, "answered")
        assert done.wait(10)
        assert got == [(True, "answered")]  # exactly once
    finally:
        link.close()


def test_past_the_timeout_it_gives_up_and_says_so(server):
    lost = threading.Event()
    link = ReconnectingConnection(server.address, timeout_s=0.5, on_lost=lost.set)
    link.call("hello")
    got = []
    link.call_async("later", callback=lambda ok, v: got.append((ok, type(v))))
    wait_for_condition(lambda: server.deferred)
    server.stop()
    with pytest.raises(rpc.ConnectionClosed):
        link.call("echo", timeout=10)  # waits for the link, which gives up
    assert lost.wait(5) and link.closed
    assert got == [(False, rpc.ConnectionClosed)]


def test_without_a_timeout_the_first_drop_is_final(server):
    lost = threading.Event()
    link = ReconnectingConnection(server.address, timeout_s=0, on_lost=lost.set)
    server.stop()
    assert lost.wait(5) and link.closed
    server.start()
    with pytest.raises(rpc.ConnectionClosed):
        link.call("echo")


def test_a_server_that_refuses_us_ends_the_link_at_once(server):
    lost = threading.Event()

    def rejoin(conn):
        raise Refused("declared dead")

    link = ReconnectingConnection(server.address, timeout_s=30, on_reconnect=rejoin,
                                  on_lost=lost.set)
    link.call("hello")
    server.stop()
    server.start()
    assert lost.wait(10) and link.closed  # long before the 30 s timeout


def test_a_server_that_never_answered_is_not_waited_for(server):
    lost = threading.Event()
    link = ReconnectingConnection(server.address, timeout_s=30, on_lost=lost.set)
    server.stop()  # as a server that refused our token: it closed before any answer
    assert lost.wait(5) and link.closed


def test_a_process_started_while_the_server_is_down_waits_for_it(tmp_path):
    address = f"unix:{tmp_path}/late.sock"
    server = []
    starter = threading.Timer(0.3, lambda: server.append(Server(address)))
    starter.start()
    try:
        link = ReconnectingConnection(address, timeout_s=10)
        assert link.call("echo") == ("echo", ())
        link.close()
    finally:
        starter.join()
        for s in server:
            s.close()
