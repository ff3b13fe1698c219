"""The chat page of ``qwen-edge serve`` (``GET /``) in a real headless browser.

Debian's chromium, driven by selenium through chromedriver, opens the page served by a real
server (uvicorn on loopback, a tiny random-weight package) and holds a conversation with a tool
call in it: the call must appear with its arguments, the result typed into the page must be
sent back, and the streamed answer must appear with where it ran and its tokens/s.

The reference is the official openai client: a second server over the same package gets the
same two requests from it, in the same order, so both servers go through the same states and
generate the same tokens (same seed). What the page shows must equal what the client receives.

Needs ``apt-get install chromium chromium-driver`` (``.ci/run`` installs them) and selenium
(the ``dev`` extra); skipped with that reason otherwise. Set ``QWEN_EDGE_CHAT_SCREENSHOT=PATH``
to save a screenshot of the finished conversation (docs/chat-page.png was made that way).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest

openai = pytest.importorskip("openai", reason="the reference is the openai client")
uvicorn = pytest.importorskip("uvicorn", reason="qwen-edge[serve] is not installed")
httpx = pytest.importorskip("httpx")
webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install selenium)")

from helpers import ServeApp
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

import qwen_edge
from qwen_edge.server import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.network
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromedriver: apt-get install -y chromium chromium-driver")

KEY = "page-key"
NAME = "tiny"
WEATHER = {"type": "object",
           "properties": {"city": {"type": "string", "enum": ["Paris", "Tokyo", "Lima"]},
                          "days": {"type": "integer", "minimum": 1, "maximum": 7}},
           "required": ["city", "days"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                           "parameters": WEATHER}}]
QUESTION = "What is the weather in Paris?"
RESULT = '{"city": "Paris", "temperature": 21}'
MAX_TOKENS = 48
SEED = 7  # sampled with the package's defaults: varied text (greedy repeats one token here)
TIMEOUT_S = 120  # for the page to finish a step; generous, never a speed assertion


@pytest.fixture(scope="module")
def servers(package: Callable[..., Any], live_server: ServeApp) -> Iterator[tuple[str, str]]:
    """(the page's server, the reference client's server), same package, separate models."""
    path = package("tiny-qwen2", "int4")

    def app() -> Any:
        return create_app(qwen_edge.load(path, threads=1), api_key=KEY, model_name=NAME)

    with live_server(app()) as page, live_server(app()) as reference:
        yield page, reference


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,860", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _reference(url: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The page's two requests sent by the openai client: (the call, the answer, its usage)."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
    messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]

    def stream(tool_choice: str) -> tuple[str, list[dict[str, Any]], Any]:
        text, usage = "", None
        calls: list[dict[str, Any]] = []  # merged by index: OpenAI streams a call in pieces
        for chunk in client.chat.completions.create(
                model=NAME, messages=messages, tools=TOOLS, tool_choice=tool_choice,
                seed=SEED, max_tokens=MAX_TOKENS, stream=True,
                stream_options={"include_usage": True}):
            usage = chunk.usage or usage
            for choice in chunk.choices:
                text += choice.delta.content or ""
                for part in choice.delta.tool_calls or []:
                    fn = part.function
                    if part.index == len(calls):
                        calls.append({"id": part.id, "function": {"name": "", "arguments": ""}})
                    call = calls[part.index]
                    call["id"] = call["id"] or part.id
                    call["function"]["name"] += (fn.name or "") if fn else ""
                    call["function"]["arguments"] += (fn.arguments or "") if fn else ""
        return text, calls, usage

    text, calls, _ = stream("required")
    assert len(calls) == 1, f"the reference made {len(calls)} calls"
    call = calls[0]
    messages.append({"role": "assistant", "content": text or None, "tool_calls": [
        {"id": call["id"], "type": "function", "function": call["function"]}]})
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": RESULT})
    answer, more, usage = stream("auto")
    assert not more, "the reference's answer is another call: pick another question"
    return call, answer, usage.model_dump()


def _set(driver: Any, element_id: str, value: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(value)


def test_page_is_open_and_self_contained(servers: tuple[str, str]) -> None:
    response = httpx.get(f"{servers[0]}/", timeout=10)  # no key needed: the page holds none
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "http://" not in response.text
    assert "https://" not in response.text
    assert httpx.get(f"{servers[0]}/v1/models", timeout=10).status_code == 401
    assert "/" not in httpx.get(f"{servers[0]}/openapi.json", timeout=10).json()["paths"]


@needs_chromium
def test_tool_call_and_answer_render_as_the_client_receives_them(
        servers: tuple[str, str], browser: Any) -> None:
    page_url, reference_url = servers
    browser.get(page_url + "/")
    wait = WebDriverWait(browser, TIMEOUT_S)
    wait.until(lambda d: d.find_element(By.ID, "model").text == "not connected")  # 401
    _set(browser, "api-key", KEY)
    browser.find_element(By.ID, "tools").click()  # blur: the key's change event reconnects
    wait.until(lambda d: d.find_element(By.ID, "model").text.startswith(NAME + " "))

    browser.execute_script("document.getElementById('tools').value = arguments[0]",
                           json.dumps(TOOLS))
    Select(browser.find_element(By.ID, "tool-choice")).select_by_visible_text("required")
    _set(browser, "seed", str(SEED))
    _set(browser, "max-tokens", str(MAX_TOKENS))
    _set(browser, "input", QUESTION)
    browser.find_element(By.ID, "send").click()

    # the call, as it streamed in, waiting for its result
    result_input = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".call form input"))
    card = browser.find_element(By.CSS_SELECTOR, ".call")
    signature = card.find_element(By.CSS_SELECTOR, ".signature").get_property("textContent")
    result_input.send_keys(RESULT)
    card.find_element(By.CSS_SELECTOR, "form button").click()

    # the answer: the second assistant message, finished when its meta line appears
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant .meta")) == 2)
    assert not browser.find_elements(By.CSS_SELECTOR, ".msg.error")
    replies = browser.find_elements(By.CSS_SELECTOR, ".msg.assistant")
    answer = replies[1].find_element(By.CSS_SELECTOR, ".text").get_property("textContent")
    meta = replies[1].find_element(By.CSS_SELECTOR, ".meta").get_property("textContent")
    shown_result = card.find_element(By.CSS_SELECTOR, ".result").get_property("textContent")

    call, expected_answer, usage = _reference(reference_url)
    name, arguments = call["function"]["name"], call["function"]["arguments"]
    jsonschema.validate(json.loads(arguments), WEATHER)
    assert card.get_attribute("data-name") == name
    assert signature == f"→ {name}({arguments})"
    assert shown_result == f"← {RESULT}"
    assert answer == expected_answer
    assert len(set(answer)) > 5  # varied text, so a lost or repeated delta shows
    assert meta.startswith(f"ran on the device ({NAME}) · {usage['completion_tokens']} tokens · ")
    assert " tok/s · first token " in meta
    assert f"{usage['prompt_tokens']} prompt tokens (" in meta

    shot = os.environ.get("QWEN_EDGE_CHAT_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
