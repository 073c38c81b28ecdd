"""The book (`make docs`) builds without a warning and every page works in a real browser.

The build runs Sphinx with -W on docs/ into a temporary folder (the notebooks execute, as in
`make docs`). Then headless Chromium opens every page from disk, as a student opens
out/book/index.html, and each page must: log no console error and throw no exception (a
missing script or image logs one), leave no math as raw TeX (MathJax typeset every formula),
draw every image and SVG (an image that failed to load has naturalWidth 0), and link only to
pages and anchors that exist. Screenshots of the start page, a notebook and the API reference
are saved in out/book-screenshots/ to look at.

Chromium is driven through its DevTools protocol over a pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so the test needs nothing beyond
the standard library and Debian's `chromium` (.ci/run installs it; elsewhere the browser test
is skipped with the reason).
"""
from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytest.importorskip("sphinx", reason="the book needs the docs extra: make docs, or pip install -e '.[docs]'")
pytest.importorskip("myst_nb", reason="the book needs the docs extra: make docs, or pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "out" / "book-screenshots"
BUILD_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The book built from this checkout with warnings as errors, as `make docs` builds it."""
    out = tmp_path_factory.mktemp("book")
    start = time.perf_counter()
    build = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
                            str(ROOT / "docs"), str(out)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert build.returncode == 0 and not build.stderr.strip(), "the book's build failed or warned:\n" + build.stderr
    say(request, f"the book built in {time.perf_counter() - start:.0f} s")
    return out


def say(request: pytest.FixtureRequest, line: str) -> None:
    """A line on pytest's terminal, shown even under -q, which hides what a test prints."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)


def pages(site: Path) -> list[Path]:
    """The book's pages (not the theme's HTML templates in _static/)."""
    return sorted(page for page in site.rglob("*.html") if page.relative_to(site).parts[0] != "_static")


class Anchors(HTMLParser):
    """A page's ids and the links and sources it points to."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("name"):
            self.ids.add(attributes["name"])
        for key in ("href", "src"):
            if attributes.get(key) and not (tag == "link" and "preload" in (attributes.get("rel") or "")):
                self.targets.append(attributes[key])


def parse(page: Path) -> Anchors:
    anchors = Anchors()
    anchors.feed(page.read_text(encoding="utf-8"))
    return anchors


def test_every_internal_link_resolves(site: Path) -> None:
    parsed = {page: parse(page) for page in pages(site)}
    broken = []
    for page, anchors in parsed.items():
        for target in anchors.targets:
            url = urlparse(target)
            if url.scheme in ("http", "https", "mailto", "data", "javascript"):
                continue
            path, fragment = unquote(url.path), url.fragment
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(site)}: {target} (no such file)")
            elif fragment and linked.suffix == ".html" and fragment not in parsed[linked].ids:
                broken.append(f"{page.relative_to(site)}: {target} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_no_page_loads_anything_from_the_network(site: Path) -> None:
    remote = [f"{page.relative_to(site)}: {target}" for page in pages(site) for target in parse(page).targets
              if re.match(r"(https?:)?//", target) and not re.search(r"\.html?(#|$)|/$", target)]
    assert not remote, "the book must read offline; these load from the network:\n" + "\n".join(remote)


# The names of the contract (the API every user relies on), each of which the reference documents.
CONTRACT = {
    "tinygrad_edu": """Tensor tensor zeros ones full empty zeros_like ones_like randn rand randint arange eye linspace
        cat stack where maximum minimum manual_seed set_default_dtype get_default_dtype set_default_device
        get_default_device no_grad enable_grad grad hvp jvp hessian jacobian gradcheck gradgradcheck
        GradcheckError detect_anomaly draw_graph jit""",
    "tinygrad_edu.Tensor": """numpy item tolist numel to cpu cuda detach requires_grad_ backward astype retain_grad
        exp log sqrt abs sin cos tanh sigmoid relu square reciprocal leaky_relu gelu clip maximum minimum sum
        mean max min var std logsumexp softmax log_softmax argmax reshape transpose T permute flatten squeeze
        unsqueeze expand broadcast_to pad""",
    "tinygrad_edu.data": "DataLoader make_moons make_spirals make_regression load_digits",
    "tinygrad_edu.distributed": """rank world_size barrier all_reduce broadcast broadcast_parameters
        DistributedOptimizer""",
    "nn": """Module Parameter Linear Conv2d MaxPool2d AvgPool2d Flatten ReLU LeakyReLU Tanh Sigmoid GELU Softmax
        Dropout BatchNorm1d LayerNorm Embedding Sequential Identity MSELoss L1Loss HuberLoss CrossEntropyLoss
        NLLLoss BCELoss BCEWithLogitsLoss save load""",
    "nn.Module": """forward parameters named_parameters children modules zero_grad train eval to state_dict
        load_state_dict""",
    "nn.functional": """linear relu leaky_relu gelu sigmoid tanh softmax log_softmax dropout conv2d max_pool2d
        avg_pool2d mse_loss l1_loss huber_loss cross_entropy nll_loss binary_cross_entropy
        binary_cross_entropy_with_logits""",
    "nn.init": "uniform_ normal_ zeros_ ones_ xavier_uniform_ xavier_normal_ kaiming_uniform_ kaiming_normal_",
    "nn.utils": "clip_grad_norm_ clip_grad_value_",
    "optim": """Optimizer SGD Adagrad RMSprop Adadelta Adam AdamW Adamax NAdam RAdam LBFGS NewtonCG
        TrustRegionNewtonCG Newton minimize OptimizeResult""",
    "optim.Optimizer": "zero_grad step state_dict load_state_dict add_param_group",
    "optim.lr_scheduler": """StepLR MultiStepLR ExponentialLR CosineAnnealingLR LinearLR LambdaLR SequentialLR
        OneCycleLR ReduceLROnPlateau""",
}


def test_the_api_reference_documents_every_name_of_the_contract(site: Path) -> None:
    documented = parse(site / "api.html").ids
    missing = [f"{owner}.{name}" for owner, names in CONTRACT.items() for name in names.split()
               if f"{owner}.{name}" not in documented]
    assert not missing, "missing from the API reference: " + ", ".join(missing)


class Chromium:
    """Headless Chromium and a minimal DevTools-protocol client over --remote-debugging-pipe."""

    def __init__(self, executable: str) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        self._profile = tempfile.mkdtemp(prefix="book-chromium-")
        def place_pipes() -> None:
            """In the child: the pipe's ends at descriptors 3 and 4, where Chromium looks for them.

            Copied aside first, so that placing one cannot overwrite the other if it was 3 or 4."""
            reading, writing = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(reading, 3)
            os.dup2(writing, 4)
        # No flag that loosens what a page may load: the book must work as a student's browser opens it.
        self.process = subprocess.Popen(
            [executable, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             f"--user-data-dir={self._profile}", "about:blank"],
            preexec_fn=place_pipes, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, session: str | None = None, **params) -> dict:
        """Call a method and wait for its answer; events that arrive meanwhile are kept."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout_s=60)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(self._receive(timeout_s=max(deadline - time.monotonic(), 0.1)))

    def _receive(self, timeout_s: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], timeout_s)
            if not ready:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)


# Run in each page once it has loaded and MathJax has finished: what a reader would see wrong.
PAGE_CHECK = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const problems = [];
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push("image not drawn: " + img.getAttribute("src"));
  }
  for (const svg of document.querySelectorAll("svg")) {
    if (svg.closest("mjx-container, button, .headerbtn, nav, .bd-header, .theme-switch-button, symbol, defs")) continue;
    const box = svg.getBoundingClientRect();
    if (svg.getClientRects().length && (box.width === 0 || box.height === 0)) problems.push("SVG of zero size");
  }
  for (const math of document.querySelectorAll(".math")) {
    if (!math.querySelector("mjx-container") && !math.closest("mjx-container")) {
      problems.push("math left as TeX: " + math.textContent.slice(0, 60));
    }
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest("pre, code, script, style, .highlight, mjx-container, .output")) continue;
    if (/\$\$|\\\(|\\\[|\$\\[a-zA-Z]/.test(node.textContent)) {
      problems.push("raw TeX in text: " + node.textContent.trim().slice(0, 60));
    }
  }
  return problems;
})()
"""


@pytest.fixture(scope="module")
def browser() -> Chromium:
    executable = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                       if shutil.which(name)), None)
    if executable is None:
        pytest.skip("no Chromium to open the book in (Debian: apt-get install chromium; .ci/run installs it)")
    chromium = Chromium(executable)
    yield chromium
    chromium.close()


def open_page(browser: Chromium, url: str) -> tuple[str, list[str]]:
    """A new tab on url, loaded; returns its session and the errors the console logged."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        browser.send(f"{domain}.enable", session)
    browser.send("Emulation.setDeviceMetricsOverride", session, width=1280, height=900, deviceScaleFactor=1,
                 mobile=False)
    browser.events.clear()
    browser.send("Page.navigate", session, url=url)
    browser.wait_for("Page.loadEventFired")
    return session, target


def console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        params = event.get("params", {})
        if event.get("method") == "Runtime.exceptionThrown":
            errors.append(params["exceptionDetails"].get("exception", {}).get("description")
                          or params["exceptionDetails"]["text"])
        elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))
        elif event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry']['text']} {params['entry'].get('url', '')}")
    return errors


def test_every_page_works_in_chromium(site: Path, browser: Chromium, request: pytest.FixtureRequest) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    wanted = {"index.html": "start.png", "notebooks/01_autodiff.html": "notebook.png", "api.html": "api.png"}
    problems = []
    for page in pages(site):
        name = page.relative_to(site).as_posix()
        session, target = open_page(browser, page.as_uri())
        found = browser.send("Runtime.evaluate", session, expression=PAGE_CHECK, awaitPromise=True,
                             returnByValue=True)["result"]["value"]
        found += console_errors(browser.events)
        problems += [f"{name}: {problem}" for problem in found]
        if name in wanted:
            shot = browser.send("Page.captureScreenshot", session, format="png")["data"]
            (SCREENSHOTS / wanted[name]).write_bytes(base64.b64decode(shot))
        browser.send("Target.closeTarget", targetId=target)
    say(request, f"the book's screenshots (start page, a notebook, the API reference): {SCREENSHOTS}")
    assert not problems, "\n".join(problems)
