"""The page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright): tabs
show what a driver made, pagination and filters work, the plots draw, and stopping a job
needs the token.

Screenshots are taken on every run; with SKATE_DOC_SCREENSHOTS=1 they replace the docs'
pictures (docs/images/dashboard-*.png, after waiting for a few resource samples so the plots
show lines), otherwise they go to a temporary folder and the tree stays clean."""

import json

import pytest

from skate.job_submission import JobStatus, JobSubmissionClient
from tests.dashboard.conftest import DOCS, browser_page, need_browser, wait_until

pytestmark = pytest.mark.skate_only
need_browser()


@pytest.fixture(scope="module")
def cluster(head):
    """The head, after a driver made 45 tasks, 2 failures, 3 actors and a group."""
    head.driver("""
        import skate
        from skate.util import placement_group
        skate.init(address="auto", namespace="browser")
        @skate.remote
        def square(x):
            return x * x
        @skate.remote
        def boom():
            raise ValueError("bad input")
        @skate.remote
        class Counter:
            def inc(self):
                return 1
        skate.get([square.remote(i) for i in range(45)])
        for _ in range(2):
            try:
                skate.get(boom.remote())
            except ValueError:
                pass
        counters = [Counter.options(name=f"counter-{i}", lifetime="detached").remote()
                    for i in range(3)]
        skate.get([c.inc.remote() for c in counters])
        skate.get(placement_group([{"CPU": 0.5}], name="browser-pg",
                                  lifetime="detached").ready())
    """)
    wait_until(lambda: head.get("/api/tasks?name=square")["total"] == 45)
    wait_until(lambda: head.get("/api/tasks?state=FAILED")["total"] == 2)
    return head


@pytest.fixture
def page(browser, cluster):
    with browser_page(browser, cluster.url, accept_downloads=True) as pg:
        yield pg


def test_overview_lists_the_node_and_draws_the_plots(page, cluster, shot):
    page.wait_for_selector("#nodes-table tbody tr td:has-text('ALIVE')")
    rows = page.locator("#nodes-table tbody tr")
    assert rows.count() == 1 and "yes" in rows.first.inner_text()
    node = cluster.info["node_id"][:12]
    for chart in (f"chart-{node}-CPU", f"chart-{node}-object_store", "chart-host"):
        canvas = page.locator(f"#{chart} canvas")
        canvas.wait_for()
        box = canvas.bounding_box()
        assert box["width"] > 100 and box["height"] > 50, (chart, box)
    if DOCS:  # a few samples, so the picture shows lines, and one more refresh of the page
        wait_until(lambda: len(cluster.get("/api/cluster/history")["t"]) >= 4, timeout=15)
        page.wait_for_timeout(2500)
    shot("overview")


def test_tasks_paginate_and_filter(page, shot):
    page.click("#tabs button[data-tab=tasks]")
    info = page.locator("[data-testid=tasks-pager-info]")
    info.wait_for()
    total = int(page.locator("[data-testid=tasks-total]").inner_text())
    assert total >= 47
    pages = -(-total // 20)
    assert info.inner_text() == f"page 1 of {pages} ({total} in all)"
    assert page.locator("#tasks-table tbody tr").count() == 20
    page.click("[data-testid=tasks-pager-next]")
    page.wait_for_selector(f"text=page 2 of {pages}")
    shot("tasks")
    page.select_option("#task-state", "FAILED")
    page.click("#task-filters button")
    page.wait_for_selector("text=page 1 of 1 (2 in all)")
    states = page.locator("#tasks-table tbody tr td:nth-child(4)").all_inner_texts()
    assert states == ["FAILED", "FAILED"]
    assert "ValueError: bad input" in page.locator("#tasks-table tbody").inner_text()
    page.select_option("#task-state", "")
    page.fill("#task-name", "square")
    page.click("#task-filters button")
    page.wait_for_selector("text=page 1 of 3 (45 in all)")


def test_actors_and_placement_groups_tabs(page, shot):
    page.click("#tabs button[data-tab=actors]")
    page.wait_for_selector("#actors-table tbody tr td:has-text('Counter')")
    names = page.locator("#actors-table tbody tr td:nth-child(3)").all_inner_texts()
    assert {"counter-0", "counter-1", "counter-2"} <= set(names)
    shot("actors")
    page.click("#tabs button[data-tab=pgs]")
    page.wait_for_selector("#pgs-table tbody tr td:has-text('browser-pg')")
    assert "CREATED" in page.locator("#pgs-table tbody").inner_text()


def test_stopping_a_job_needs_the_token(page, cluster, shot):
    client = JobSubmissionClient(cluster.url, token=cluster.token)
    sid = client.submit_job(entrypoint="echo waiting; exec sleep 60",
                            submission_id="browser-sleeper")
    wait_until(lambda: client.get_job_status(sid) is JobStatus.RUNNING)
    page.click("#tabs button[data-tab=jobs]")
    stop = page.locator(f"[data-testid=stop-{sid}]")
    stop.click()
    page.wait_for_selector("#error:not([hidden])")
    assert "needs the cluster token" in page.locator("#error-text").inner_text()
    assert client.get_job_status(sid) is JobStatus.RUNNING
    shot("jobs-no-token")
    page.fill("#token", cluster.token)
    page.click("#save-token")
    assert page.locator("#token-state").inner_text() == "token set for this tab"
    page.locator(f"[data-testid=stop-{sid}]").click()
    wait_until(lambda: client.get_job_status(sid) is JobStatus.STOPPED)
    page.wait_for_selector(f"#jobs-table tr:has-text('{sid}') .badge.STOPPED")
    assert page.locator("#error").is_hidden()
    page.click(f"#jobs-table tr:has-text('{sid}') button:has-text('Logs')")
    page.wait_for_selector("#job-logs:has-text('waiting')")
    shot("jobs")
    # the token lives in this tab's sessionStorage only
    assert page.evaluate("sessionStorage.getItem('skate-dashboard-token')") == cluster.token
    assert page.evaluate("localStorage.length") == 0


def test_timeline_downloads(page, tmp_path):
    page.click("#tabs button[data-tab=timeline]")
    with page.expect_download() as download:
        page.click("#timeline-download")
    path = tmp_path / "timeline.json"
    download.value.save_as(path)
    events = json.loads(path.read_text())
    assert any(e["name"] == "square" and e["ph"] == "X" for e in events)
