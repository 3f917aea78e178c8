"""`dvc plots show` writes a page that draws every plot with no network (.dvc/plots_template.html,
written by scripts/offline_plots.py), checked in a real headless browser with the network off."""

import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, run

sys.path.insert(0, str(REPO / "scripts"))
import offline_plots  # noqa: E402


def test_the_template_inlines_the_pinned_libraries_and_loads_nothing():
    page = (REPO / ".dvc" / "plots_template.html").read_text()
    for name, version, _ in offline_plots.LIBRARIES:
        assert f"/* {name}@{version} */" in page, name
    assert not re.search(r"<script[^>]*\ssrc=", page) and "{plot_divs}" in page
    assert "html_template = plots_template.html" in (REPO / ".dvc" / "config").read_text()


def test_no_plot_title_breaks_the_page_script():
    """dvc-render puts each title in a JS string ('#title'): an apostrophe ends it and that plot stays blank."""
    import yaml

    titles = [next(iter(p)) if isinstance(p, dict) else p for p in yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]]
    assert titles and not [t for t in titles if "'" in t]


def _headless(url: str) -> str | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return None
    offline = ["unshare", "-n"] if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0 else []
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000", "--dump-dom"]
    if not offline:
        flags.append("--proxy-server=127.0.0.1:9")  # no namespace to cut the network: point it nowhere
    return subprocess.run([*offline, browser, *flags, url], capture_output=True, text=True, timeout=180).stdout


def test_every_plot_draws_in_a_headless_browser_with_the_network_off(tmp_path):
    run(["dvc", "plots", "show", "-o", str(tmp_path / "plots")], REPO)
    page = tmp_path / "plots" / "index.html"
    dom = _headless(page.as_uri())
    if dom is None:
        pytest.skip("no chromium on this machine (Debian: apt install chromium)")
    plots = len(re.findall(r"vegaEmbed\(", page.read_text()))
    assert plots >= 10 and dom.count('class="marks"') == plots
