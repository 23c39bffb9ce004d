"""The serve controller's status board: its status in the KV for the dashboard, written only
when it changed, and a failed write never reaching the controller -- no processes."""

import asyncio
import json

import pytest

from skate.serve.controller_report import StatusBoard

pytestmark = pytest.mark.skate_only


def test_the_status_is_written_only_when_it_changed(caplog):
    status = {"applications": {}, "proxy": None}
    written = []
    board = StatusBoard(lambda: status, put=written.append)

    async def run():
        assert await board.publish()
        assert not await board.publish()  # the same
        status["applications"] = {"app": {"status": "RUNNING"}}
        assert await board.publish()

    asyncio.run(run())
    bodies = [json.loads(w) for w in written]
    assert [b["applications"] for b in bodies] == [{}, {"app": {"status": "RUNNING"}}]
    assert all(isinstance(b["published_at"], float) for b in bodies)


def test_a_failed_write_is_logged_once_and_retried(caplog):
    calls = []

    def put(value):
        calls.append(value)
        if len(calls) < 3:
            raise ConnectionError("no control store")

    board = StatusBoard(lambda: {"applications": {}}, put=put)

    async def run():
        assert not await board.publish()
        assert not await board.publish()
        assert await board.publish()  # not written yet: tried again

    asyncio.run(run())
    assert len(calls) == 3
    assert sum("was not published" in r.message for r in caplog.records) == 1
