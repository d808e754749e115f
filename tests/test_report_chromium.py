"""The report opens in a real browser (headless Chromium, Debian's ``chromium``) with every image decoded.

A wrapper page loads the report in an iframe and writes, into its own DOM,
how many <img> elements the report has and how many the browser decoded;
``--dump-dom`` prints that DOM. A control page with one broken image shows
the check can fail. The report needs no network: Chromium runs with the
network disabled through a proxy that does not exist.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from test_report_html import full_report  # noqa: E402

from neurocompile.report import render_html  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian: apt-get install -y chromium)")

WRAPPER = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="%s" width="1200" height="800"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {
  var d = this.contentDocument, imgs = Array.from(d.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.getElementById("result").textContent = JSON.stringify({title: d.title, images: imgs.length, decoded: ok,
    headings: Array.from(d.querySelectorAll("h2")).map(function (h) { return h.textContent; })});
});
</script></body></html>"""


def open_in_chromium(page: Path, tmp_path: Path) -> dict:
    wrapper = tmp_path / f"wrap-{page.stem}.html"
    wrapper.write_text(WRAPPER % page.name)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
           "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000", f"--user-data-dir={tmp_path / 'profile'}",
           "--dump-dom", wrapper.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    m = re.search(r'<pre id="result">([^<]*)</pre>', out)
    assert m and m.group(1) != "pending", f"chromium did not load the page: {out[:500]}"
    return json.loads(m.group(1).replace("&quot;", '"'))


def test_report_renders_with_all_its_images(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render_html(full_report()))
    seen = open_in_chromium(page, tmp_path)
    assert seen["title"] == "neurocompile report: loihi2"
    assert seen["images"] == 6 and seen["decoded"] == 6
    assert "Energy per sample, per hardware profile" in seen["headings"] and "Mapping onto cores" in seen["headings"]


def test_a_broken_image_is_caught(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(render_html(full_report()).replace("base64,iVBOR", "base64,AAAA", 1))
    seen = open_in_chromium(page, tmp_path)
    assert seen["images"] == 6 and seen["decoded"] == 5
