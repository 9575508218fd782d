"""serve.py's page in a real browser: Playwright drives the system's headless Chromium against the
service on the tiny untrained model (uvicorn in a thread, 127.0.0.1 only). A linked search runs on
load, two liked results re-rank it (relevance feedback), an uploaded photo is searched with a box
drawn on it, an API error reaches the page; no console errors, no horizontal scroll at 375 px."""
import contextlib
import dataclasses
import importlib.util
import os
import pathlib
import re
import shutil
import signal
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tf_partfash.attributes import attribute

pytest.importorskip('fastapi', reason="serve.py's dependencies: pip install -e '.[serve]'")
pytest.importorskip('uvicorn', reason="serve.py's dependencies: pip install -e '.[serve]'")

# Set to 1 where the browser tests must run (CI): a missing browser then fails instead of skipping.
REQUIRE_BROWSER_ENV = 'TF_PARTFASH_REQUIRE_BROWSER'
WAIT_MS = 20_000  # every browser wait and action; the server start too
TEST_SECONDS = 60  # a whole test (each takes a few seconds)
BUSY_DONE = "document.querySelector('#results').getAttribute('aria-busy') === 'false'"


def _browser_missing() -> str | None:
  """Why no browser can be driven here, or None."""
  if importlib.util.find_spec('playwright') is None:
    return "Playwright is not installed: pip install -e '.[test]'"
  if shutil.which('chromium') is None:
    return ('no chromium on PATH (Debian: apt-get install chromium); the tests drive the '
            "system's browser, not one `playwright install` downloads")
  return None


BROWSER_MISSING = _browser_missing()
if BROWSER_MISSING and os.environ.get(REQUIRE_BROWSER_ENV) != '1':
  pytest.skip(BROWSER_MISSING, allow_module_level=True)  # before the model fixture is built


@contextlib.contextmanager
def _time_limit(seconds: int):
  """A TimeoutError in the test after `seconds` (SIGALRM: only in the main thread, on POSIX)."""
  if not hasattr(signal, 'SIGALRM') or threading.current_thread() is not threading.main_thread():
    yield
    return

  def expired(signum, frame):
    raise TimeoutError(f'the test ran over {seconds} s')
  previous = signal.signal(signal.SIGALRM, expired)
  signal.alarm(seconds)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope='module')
def browser():
  if BROWSER_MISSING:  # only with TF_PARTFASH_REQUIRE_BROWSER=1: else the module is skipped
    pytest.fail(f'{BROWSER_MISSING} ({REQUIRE_BROWSER_ENV}=1)', pytrace=False)
  from playwright.sync_api import sync_playwright
  with sync_playwright() as playwright:
    # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
    launched = playwright.chromium.launch(executable_path=shutil.which('chromium'),
                                          headless=True, args=['--no-sandbox'], timeout=WAIT_MS)
    yield launched
    launched.close()


@pytest.fixture(scope='module')
def server(untrained_run):
  """The service's base URL: the untrained run's app, built as tests/test_serve_api.py builds it."""
  import uvicorn

  from tf_partfash.search.session import open_catalogue
  from tf_partfash.search.trained_run import TrainedRun
  from tf_partfash.serving.app import create_app
  from tf_partfash.serving.service import SearchService
  app = create_app(SearchService(open_catalogue(TrainedRun.open(untrained_run.workdir,
                                                                progress=False))))
  # The socket is bound here and handed over, so no other process can take the port meanwhile.
  sock = socket.socket()
  sock.bind(('127.0.0.1', 0))
  port = sock.getsockname()[1]
  served = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning'))
  thread = threading.Thread(target=served.run, kwargs={'sockets': [sock]}, daemon=True)
  thread.start()
  base = f'http://127.0.0.1:{port}'
  deadline = time.monotonic() + WAIT_MS / 1000
  while True:
    try:
      with urllib.request.urlopen(f'{base}/api/health', timeout=2) as answer:
        if answer.status == 200:
          break
    except OSError:
      pass
    if time.monotonic() > deadline or not thread.is_alive():
      served.should_exit = True
      pytest.fail(f'the service did not answer {base}/api/health within {WAIT_MS} ms')
    time.sleep(0.1)
  yield base
  served.should_exit = True
  thread.join(timeout=10)
  sock.close()


@dataclasses.dataclass
class Tab:
  """A browser page, its console errors and uncaught exceptions, and where a failure's
  screenshot goes."""
  page: Any
  shots: pathlib.Path
  errors: list[str] = dataclasses.field(default_factory=list)

  @contextlib.contextmanager
  def checked(self):
    """A failure inside, or running over TEST_SECONDS, is reported with a screenshot."""
    try:
      with _time_limit(TEST_SECONDS):
        yield
    except Exception as e:
      shot = self.shots / 'page.png'
      try:
        self.page.screenshot(path=str(shot), full_page=True, timeout=5_000)
        where = f'screenshot: {shot}'
      except Exception as failed:  # the page itself may be what broke
        where = f'no screenshot ({failed})'
      raise AssertionError(f'{e}\n{where}\nbrowser errors: {self.errors}') from e


@pytest.fixture
def tab(browser, tmp_path):
  context = browser.new_context(viewport={'width': 1280, 'height': 900})
  context.set_default_timeout(WAIT_MS)
  opened = Tab(context.new_page(), tmp_path)
  opened.page.on('console', lambda m: m.type == 'error' and opened.errors.append(
      f'console: {m.text}'))
  opened.page.on('pageerror', lambda e: opened.errors.append(f'page error: {e}'))
  yield opened
  context.close()


def _known_value(run, name):
  """A value of `name` the training split has (so it has a prototype)."""
  return attribute(name).values[int(np.argmax(run.prototypes.counts[name]))]


def _rows(page):
  return [int(r) for r in page.locator('#results .result').evaluate_all(
      'cards => cards.map(c => c.dataset.row)')]


def _search_response(page):
  return page.expect_response(lambda r: r.url.endswith('/api/search')
                              and r.request.method == 'POST')


def test_a_linked_search_runs_on_load_and_liked_results_re_rank_it(tab, server, untrained_run):
  name = 'sleevelen'
  value = _known_value(untrained_run, name)
  page = tab.page
  with tab.checked():
    page.goto(f'{server}/?query=0&set={name}:{urllib.parse.quote(value)}')
    cards = page.locator('#results .result')
    cards.first.wait_for()
    page.wait_for_function(BUSY_DONE)
    first = _rows(page)
    assert len(first) == min(12, len(untrained_run.gallery) - 1) and 0 not in first, first
    assert page.input_value(f'#set-{name}') == value
    assert page.locator('#query-image').get_attribute('src').startswith('/api/images/0?')
    assert page.locator('#query-attributes tbody tr').count() == 5

    cards.nth(0).click()
    cards.nth(2).click()
    cards.nth(1).focus()  # the keyboard toggles a card too: on, then off again
    page.keyboard.press('Enter')
    assert cards.nth(1).get_attribute('aria-pressed') == 'true'
    page.keyboard.press('Space')
    assert [cards.nth(i).get_attribute('aria-pressed') for i in range(3)] == \
        ['true', 'false', 'true']
    assert page.inner_text('#again') == 'Search again with 2 liked'
    with _search_response(page) as response:
      page.click('#again')
    assert response.value.request.post_data_json == {
        'query': '0', 'set': {name: value}, 'top_k': 12, 'feedback': [str(first[0]), str(first[2])]}
    page.wait_for_function(BUSY_DONE)
    again = _rows(page)
    assert again == [r['row'] for r in response.value.json()['results']]
    assert again != first
    assert f'feedback={first[0]},{first[2]}' in page.url, page.url
    still_liked = [r for r in (first[0], first[2]) if r in again]  # the likes stay marked
    assert all(cards.nth(again.index(r)).get_attribute('aria-pressed') == 'true'
               for r in still_liked)
    assert tab.errors == []

    page.click('#browse summary')  # the gallery browser open too: the widest the page gets
    page.locator('#gallery .thumb').first.wait_for()
    page.set_viewport_size({'width': 375, 'height': 800})
    width = page.evaluate('document.documentElement.scrollWidth')
    assert width <= 375, f'{width} px wide at a 375 px viewport: it scrolls sideways'

    # An API error reaches the page: the service's own sentence, in the alert.
    page.goto(f'{server}/?query=0&set=color:plaid')
    page.wait_for_function("document.querySelector('#error').textContent !== ''")
    assert "unknown value 'plaid' for attribute 'color'" in page.inner_text('[role=alert]')
    assert page.locator('#error').is_visible()


def test_an_uploaded_photo_is_searched_with_the_box_drawn_on_it(tab, server, untrained_run):
  file = untrained_run.gallery.file(2)
  width, height = Image.open(file).size
  page = tab.page
  with tab.checked():
    page.goto(server)
    page.wait_for_function("!document.querySelector('#search').disabled")
    page.set_input_files('#upload', str(file))
    page.wait_for_function("document.querySelector('#box-text').textContent.startsWith('No box')")
    at = page.locator('#crop-canvas').bounding_box()
    page.mouse.move(at['x'] + 0.1 * at['width'], at['y'] + 0.1 * at['height'])
    page.mouse.down()
    page.mouse.move(at['x'] + 0.9 * at['width'], at['y'] + 0.6 * at['height'], steps=5)
    page.mouse.up()
    bodies = []

    def record(route):  # Chromium shows a route the form's text fields (not the file's bytes)
      bodies.append(route.request.post_data_buffer or b'')
      route.continue_()
    page.route('**/api/search', record)
    with _search_response(page) as response:
      page.click('#search')
    sent = re.search(rb'name="box"\r\n\r\n([^\r]*)\r\n', bodies[0])
    assert sent, 'the request sent no box'
    box = [int(v) for v in sent.group(1).split(b',')]
    slack = 2 + max(width / at['width'], height / at['height'])  # a CSS pixel, and rounding
    expected = [0.1 * width, 0.1 * height, 0.9 * width, 0.6 * height]
    assert np.allclose(box, expected, atol=slack), (box, expected)
    assert response.value.status == 200, response.value.text()
    page.wait_for_function(BUSY_DONE)
    answer = response.value.json()
    assert answer['query']['row'] is None
    assert _rows(page) == [r['row'] for r in answer['results']] and answer['results']
    assert page.locator('#query-attributes').is_visible()
    assert 'query=' not in page.url  # an upload cannot be linked to
    assert tab.errors == []

