"""The Logs, Objects, Tune and Serve tabs in headless Chromium (as test_browser.py): each
renders what a driver made -- an actor's output (and a live tail of it), an object in the
store, a Tune run's trials and curves, a Serve deployment's replicas and requests -- with
its plots' canvases. Screenshots as in test_browser.py (SKATE_DOC_SCREENSHOTS=1 refreshes the
docs' pictures)."""

import textwrap
import urllib.request

import pytest

from tests.dashboard.conftest import (
    DOCS,
    TALKER,
    UNTIL_STDIN_CLOSES,
    browser_page,
    free_port,
    need_browser,
    serve_app,
    wait_until,
)

pytestmark = pytest.mark.skate_only
need_browser()

REQUESTS = 12


@pytest.fixture(scope="module")
def cluster(head):
    """The head while a driver keeps what it made: a talking actor, an object, a finished
    Tune run and a Serve deployment that answered REQUESTS requests."""
    made = textwrap.dedent("""
        import numpy as np
        from skate import tune
        skate.get(talker.say.remote("hello from the talker"))
        big = skate.put(np.ones(3_000_000, dtype=np.uint8))
        def trainable(config):
            for i in range(1, 6):
                tune.report({"loss": config["lr"] * 10 / i, "accuracy": 1 - 1 / (i + 1)})
        tune.run(trainable, config={"lr": tune.grid_search([0.1, 0.2])}, name="browser-sweep",
                 metric="loss", mode="min", verbose=0)
    """)
    port = free_port()
    with head.running(TALKER + made + serve_app(port, "greeter", "/greet", REQUESTS) +
                      UNTIL_STDIN_CLOSES + "serve.shutdown()\n", timeout=120):
        # the serve page's plots need the replicas' metrics sampled at least twice
        wait_until(lambda: (d := head.get("/api/serve")["series"]["deployments"])
                   and len([q for q in d[0]["qps"] if q is not None]) >= 1, timeout=20)
        yield head


@pytest.fixture
def page(browser, cluster):
    with browser_page(browser, cluster.url) as pg:
        yield pg


def _canvas(page, selector):
    canvas = page.locator(f"{selector} canvas").first
    canvas.wait_for()
    box = canvas.bounding_box()
    assert box["width"] > 100 and box["height"] > 50, (selector, box)


def test_the_logs_tab_tails_an_actor_and_follows_it(page, cluster, shot):
    page.click("#tabs button[data-tab=actors]")
    page.locator("#actors-table tr:has-text('Talker') button:has-text('Logs')").click()
    page.wait_for_selector("#log-text:has-text('hello from the talker')")
    assert page.locator("#tab-logs").is_visible()
    assert page.locator("#log-files a:has-text('worker-')").count() >= 1
    page.click("#log-follow")
    page.wait_for_selector("#log-state:has-text('following')")
    cluster.driver("""
        import skate
        skate.init(address="auto", namespace="pages")
        skate.get(skate.get_actor("talker").say.remote("said while followed"))
    """)
    page.wait_for_selector("#log-text:has-text('said while followed')")
    shot("logs")
    page.click("#log-follow")  # stop
    page.wait_for_selector("#log-state:has-text('stopped')")


def test_the_objects_tab_shows_the_store_and_the_object(page, shot):
    page.click("#tabs button[data-tab=objects]")
    page.wait_for_selector("#callsites-table td:has-text('skate.put()')")
    assert "(head)" in page.locator("#stores-table tbody").inner_text()
    page.click("#callsites-table a:has-text('skate.put()')")
    page.wait_for_selector("#objects-filter:has-text('made by')")
    rows = page.locator("#objects-table tbody tr")
    assert rows.count() >= 1 and "2.9 MiB" in rows.first.inner_text()
    _canvas(page, "#store-charts")
    shot("objects")


def test_the_tune_tab_shows_the_trials_and_their_curves(page, shot):
    tab = page.locator("#tabs button[data-tab=tune]")
    tab.wait_for()  # shown: an experiment was published
    tab.click()
    page.wait_for_selector("#tune-experiments td:has-text('browser-sweep')")
    page.wait_for_selector("#tune-trials tbody tr:nth-child(2)")
    statuses = page.locator("#tune-trials tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses == ["TERMINATED", "TERMINATED"]
    assert page.locator("#tune-metric").input_value() == "loss"
    _canvas(page, "#tune-chart")
    page.select_option("#tune-metric", "accuracy")
    page.wait_for_selector("#tune-chart h3:has-text('accuracy per iteration')")
    shot("tune")
    # no sgd trainer and no algorithm ran: their tabs stay hidden
    assert page.locator("#tabs button[data-tab=train]").is_hidden()
    assert page.locator("#tabs button[data-tab=rllib]").is_hidden()


def test_the_serve_tab_shows_the_deployment_and_its_plots(page, cluster, shot):
    tab = page.locator("#tabs button[data-tab=serve]")
    tab.wait_for()
    tab.click()
    row = page.locator("#serve-deployments tbody tr:has-text('Greeter')")
    row.wait_for()
    page.wait_for_selector("#serve-deployments td:has-text('RUNNING 1')")
    assert f"{REQUESTS}" in row.inner_text()
    assert "RUNNING" in page.locator("#serve-apps tbody").inner_text()
    for chart in ("#chart-serve-qps", "#chart-serve-p50", "#chart-serve-p99"):
        _canvas(page, chart)
    if DOCS:  # a few more samples of more requests, so the pictures show lines
        proxy = cluster.get("/api/serve")["proxy"]
        for burst in range(1, 5):
            for _ in range(REQUESTS * burst):
                urllib.request.urlopen(f"http://{proxy['host']}:{proxy['port']}/greet").read()
            page.wait_for_timeout(2100)
    shot("serve")
