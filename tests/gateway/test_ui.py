"""The web page in a real headless Chromium, on a real gateway, broker and worker: sign in, start a run,
watch it live, approve it, cancel another; AI tokens as they stream; a viewer sees no buttons; a run's
output is shown as text."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.gateway.server import GatewayServer, gateway_settings
from tests.harness import AiServers, Engine, wait_until
from tests.loopback import Reply

KEYS = {"ui-op": {"tenant": "ui", "role": "operator", "name": "olga"}, "ui-view": {"tenant": "ui", "role": "viewer"}}
WAIT_S = 30


@pytest.fixture(scope="module")
def gateway(ai_engine: Engine) -> Iterator[GatewayServer]:
    server = GatewayServer(gateway_settings(ai_engine.settings, api_keys=json.dumps(KEYS)), require_auth=True)
    server.wait_ready()
    yield server
    server.close()


@pytest.fixture(scope="module")
def workflow(gateway: GatewayServer) -> str:
    name = f"ui-{uuid.uuid4().hex[:6]}"
    definition = {
        "name": name,
        "inputs": {"who": {"type": "string", "required": True}},
        "nodes": {
            "greet": {"kind": "transform", "output": "hi {{ inputs.who }}"},
            "write": {"kind": "ai", "provider": "openai", "model": "gpt-4o-mini", "prompt": "{{ inputs.who }}"},
            "approve": {"kind": "approval", "depends_on": ["greet", "write"]},
        },
        "outputs": {"greeting": "{{ nodes.greet.output }}"},
    }
    with gateway.client("ui-op") as client:
        assert client.post("/v1/workflows", json=definition).status_code == 201
    return name


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "the page is tested in Chromium: apt-get install chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    yield session
    session.quit()


def _until(browser: WebDriver, what: str, check: object) -> None:
    # The page redraws rows as events arrive: an element found a moment ago may be gone, so look again.
    redrawn = (StaleElementReferenceException, NoSuchElementException)
    WebDriverWait(browser, WAIT_S, ignored_exceptions=redrawn).until(
        check,  # type: ignore[arg-type]
        f"{what} (browser log: {browser.get_log('browser')})",
    )


def _text(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def _node(browser: WebDriver, node: str) -> WebElement:
    return browser.find_element(By.CSS_SELECTOR, f'#nodes tr[data-node="{node}"]')


def _sign_in(browser: WebDriver, gateway: GatewayServer, key: str) -> None:
    browser.get(gateway.url)
    _until(browser, "the sign-in form", lambda b: b.find_element(By.ID, "signin").is_displayed())
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    _until(browser, "the page, live", lambda b: _text(b, "live") == "live")


def _start(browser: WebDriver, workflow: str, inputs: dict[str, str]) -> str:
    _until(browser, "the workflow list", lambda b: workflow in _text(b, "workflow"))
    Select(browser.find_element(By.ID, "workflow")).select_by_value(workflow)
    _until(browser, "its inputs described", lambda b: "who (string, required)" in _text(b, "inputs-hint"))
    box = browser.find_element(By.ID, "inputs")
    box.clear()
    box.send_keys(json.dumps(inputs))
    before = _text(browser, "run-id")
    browser.find_element(By.CSS_SELECTOR, "#start-form button").click()
    _until(browser, "the new run", lambda b: _text(b, "run-id") not in ("", before))
    return _text(browser, "run-id")


def test_the_page_is_served_with_a_strict_policy(gateway: GatewayServer) -> None:
    page = httpx.get(gateway.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    script = httpx.get(gateway.url + "/ui/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    # The page is public; what it shows is not: the API still wants the key.
    assert httpx.get(gateway.url + "/v1/me").status_code == 401
    me = httpx.get(gateway.url + "/v1/me", headers={"authorization": "Bearer ui-op"}).json()
    assert me == {"tenant": "ui", "role": "operator", "name": "olga", "open": False}


def test_an_operator_starts_watches_approves_and_cancels(
    browser: WebDriver, gateway: GatewayServer, workflow: str, ai_servers: AiServers
) -> None:
    # The answer starts after the page has subscribed, and streams slowly enough to be seen in pieces.
    answer = "alpha beta gamma delta epsilon zeta"
    ai_servers.openai.plan("gpt-4o-mini", Reply.ok(answer, delay=1.0, chunk_delay=0.3))
    browser.get(gateway.url)
    _until(browser, "the sign-in form", lambda b: b.find_element(By.ID, "signin").is_displayed())
    browser.find_element(By.ID, "key").send_keys("wrong-key")
    browser.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    _until(browser, "the refusal", lambda b: "not accepted" in _text(b, "notice"))
    browser.find_element(By.ID, "key").clear()
    _sign_in(browser, gateway, "ui-op")
    assert _text(browser, "who") == "tenant ui · operator · olga"

    Select(browser.find_element(By.ID, "workflow")).select_by_value(workflow)
    _until(browser, "its inputs described", lambda b: "who (string, required)" in _text(b, "inputs-hint"))
    skeleton = browser.find_element(By.ID, "inputs").get_attribute("value")
    assert json.loads(str(skeleton)) == {"who": None}, "a skeleton of the declared inputs to fill in"
    browser.find_element(By.CSS_SELECTOR, "#start-form button").click()  # as it is: nothing starts
    _until(browser, "the refusal", lambda b: "inputs.who" in _text(b, "notice"))
    run_id = _start(browser, workflow, {"who": "Ada"})
    streamed = '#nodes tr[data-node="write"] pre.tokens'
    _until(browser, "the first tokens", lambda b: b.find_elements(By.CSS_SELECTOR, streamed))
    partial = browser.find_element(By.CSS_SELECTOR, streamed).text
    assert partial and answer.startswith(partial) and partial != answer, partial
    _until(
        browser,
        "the answer recorded",
        lambda b: answer in _node(b, "write").text and "succeeded" in _node(b, "write").text,
    )
    _until(browser, "the approval waiting", lambda b: _node(b, "approve").find_elements(By.CLASS_NAME, "approve"))
    assert "hi Ada" in _node(browser, "greet").text
    _until(browser, "the run in the list", lambda b: run_id in _text(b, "runs"))
    _node(browser, "approve").find_element(By.CLASS_NAME, "approve").click()
    _until(browser, "the run succeeded", lambda b: _text(b, "run-status") == "succeeded")
    assert json.loads(_text(browser, "outputs")) == {"greeting": "hi Ada"}
    events = _text(browser, "events")
    assert "SignalReceived" in events and "RunSucceeded" in events
    with gateway.client("ui-op") as client:
        assert client.get(f"/v1/runs/{run_id}").json()["nodes"]["approve"]["output"] == {"approve": True, "by": "olga"}
    row = f'#runs tr[data-run="{run_id}"]'
    _until(browser, "the list updated live", lambda b: "succeeded" in b.find_element(By.CSS_SELECTOR, row).text)

    # With the list filtered to other runs, the followed run still has its kinds and its buttons.
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("succeeded")
    other = _start(browser, workflow, {"who": "Bo"})
    _until(browser, "the second run waiting", lambda b: _node(b, "approve").find_elements(By.CLASS_NAME, "approve"))
    assert other not in _text(browser, "runs")
    browser.find_element(By.ID, "cancel").click()
    browser.switch_to.alert.accept()
    _until(browser, "the run cancelled", lambda b: _text(b, "run-status") == "cancelled")
    assert "cancelled" in _node(browser, "approve").text
    assert "cancelled from the web page by olga" in _text(browser, "outputs")
    assert not browser.find_element(By.ID, "cancel").is_displayed()

    # Only the address's hash changes: the page follows the run it names.
    browser.execute_script("location.hash = arguments[0]", f"run={run_id}")
    _until(browser, "the first run again", lambda b: _text(b, "run-id") == run_id)
    _until(browser, "its status", lambda b: _text(b, "run-status") == "succeeded")


def test_a_viewer_sees_runs_but_no_buttons_and_output_stays_text(
    browser: WebDriver, gateway: GatewayServer, workflow: str
) -> None:
    markup = '<img src=x onerror="window.pwned=1">'
    with gateway.client("ui-op") as client:
        started = client.post("/v1/runs", json={"workflow": workflow, "inputs": {"who": markup}})
        assert started.status_code == 202
        run_id = started.json()["run_id"]
    _sign_in(browser, gateway, "ui-view")
    assert not browser.find_element(By.ID, "start-form").is_displayed()
    _until(browser, "the run in the list", lambda b: run_id in _text(b, "runs"))
    browser.find_element(By.CSS_SELECTOR, f'#runs tr[data-run="{run_id}"]').click()
    _until(browser, "the approval waiting", lambda b: "approval waiting" in _node(b, "approve").text)
    assert _node(browser, "approve").find_elements(By.TAG_NAME, "button") == []
    assert not browser.find_element(By.ID, "cancel").is_displayed()
    assert f"hi {markup}" in _node(browser, "greet").text
    assert json.loads(_text(browser, "run-inputs")) == {"who": markup}
    assert browser.current_url.endswith(f"#run={run_id}"), "the address links to the run"
    assert browser.find_elements(By.CSS_SELECTOR, "#run img") == []
    assert browser.execute_script("return window.pwned") is None

    # A link to a run that is not there says so, with nothing to act on.
    browser.get(f"{gateway.url}/#run=no-such-run")
    _until(browser, "the missing run", lambda b: _text(b, "run-status") == "not found")
    assert "There is no run no-such-run in tenant ui" in _text(browser, "run-workflow")
    assert not browser.find_element(By.ID, "cancel").is_displayed()

    # A link to the run opens it; the list filters by status.
    browser.get(f"{gateway.url}/#run={run_id}")
    _until(browser, "the linked run", lambda b: _text(b, "run-id") == run_id)
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("succeeded")
    _until(browser, "the filtered list", lambda b: run_id not in _text(b, "runs"))
    Select(browser.find_element(By.ID, "status-filter")).select_by_value("waiting")
    _until(browser, "the waiting runs", lambda b: run_id in _text(b, "runs"))


def test_the_list_shows_fifty_runs_and_more_on_request(browser: WebDriver, gateway: GatewayServer) -> None:
    name = f"ui-many-{uuid.uuid4().hex[:6]}"
    with gateway.client("ui-op") as client:
        assert client.post("/v1/workflows", json={"name": name, "nodes": {"a": {"kind": "transform", "output": 1}}})
        for _ in range(51):
            assert client.post("/v1/runs", json={"workflow": name, "inputs": {}}).status_code == 202

        def listed() -> bool:
            runs = client.get("/v1/runs", params={"workflow": name, "limit": 100}).json()["runs"]
            return len(runs) == 51

        wait_until(listed, timeout=WAIT_S)
        total = len(client.get("/v1/runs", params={"limit": 100}).json()["runs"])
    _sign_in(browser, gateway, "ui-view")
    rows = "#runs tbody tr"
    _until(browser, "a page of runs", lambda b: len(b.find_elements(By.CSS_SELECTOR, rows)) == 50)
    browser.find_element(By.ID, "more-runs").click()
    _until(browser, "the next page", lambda b: len(b.find_elements(By.CSS_SELECTOR, rows)) == total)
