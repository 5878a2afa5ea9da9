"""`invsolve report`: one self-contained HTML page, read back with the standard library's HTML parser."""

import shutil
import subprocess
from html.parser import HTMLParser

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import err_line
from figure_data import LINEAR, MCMC, image_files, run as run_ok
from invsolve.cli import app

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.filterwarnings("ignore:MCMC chains disagree")]
runner = CliRunner()
HOSTILE = "<script>alert('x')</script> & \"quoted\""


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


class Page(HTMLParser):
    """Tags, attributes and table rows of a page."""

    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.rows, self._table = [], [], {}, []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if tag == "table":
            self._table.append(dict(attrs).get("id") or dict(attrs).get("class") or "table")
        if tag == "tr" and self._table:
            self.rows[self._table[-1]] = self.rows.get(self._table[-1], 0) + 1

    def handle_endtag(self, tag):
        if tag == "table" and self._table:
            self._table.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    f = image_files(folder)
    np.save(folder / "lx.npy", np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32))
    f["linear"] = folder / "lm.h5"
    run_ok("simulate", "--operator", "linear", *LINEAR, "-i", folder / "lx.npy", "-o", f["linear"], "-q")
    f["linear_post"] = folder / "lpost.h5"
    run_ok("sample-posterior", f["linear"], *MCMC, "-S", 'prior={"name": "gaussian", "dim": 3}', "-o",
           f["linear_post"], "-q")
    with h5py.File(f["reconstruction"], "a") as h:  # text a file may carry: never markup on the page
        h.attrs["source"] = HOSTILE
    return f


def test_report_embeds_every_figure_and_evaluates_the_results(files, tmp_path):
    out = tmp_path / "report.html"
    inputs = [files[k] for k in ("measurement", "reconstruction", "no_truth", "posterior", "prior", "sampler",
                                 "linear_post")]
    res = run("report", *inputs, "-o", out)
    assert res.exit_code == 0, res.output
    page = parse(out)
    imgs = [v for tag, k, v in page.attrs if tag == "img" and k == "src"]
    assert len(imgs) == len(inputs) and all(v.startswith("data:image/png;base64,") for v in imgs)
    # header + one row per result file (reconstruction, no_truth, posterior, linear_post)
    assert page.rows["evaluation"] == 1 + 4
    text = " ".join(page.text)
    assert "no ground truth stored; give --reference" in text and "0.2" in text
    assert page.rows["timing"] >= 1 and page.rows["settings"] > 10
    for key in ("operator", "noise", "method", "sampler", "seed", "device", "invsolve_version", "torch_version"):
        assert key in text


def test_report_is_self_contained_and_escapes_file_text(files, tmp_path):
    out = tmp_path / "r.html"
    assert run("report", files["reconstruction"], "-o", out, "--title", "<b>run</b>").exit_code == 0
    html = out.read_text(encoding="utf-8")
    page = parse(out)
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert "<script>" not in html and "<b>run</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;quoted&quot;" in html
    assert HOSTILE in " ".join(page.text)  # shown as text
    refs = [v for _, k, v in page.attrs if k in ("src", "href", "srcset", "action", "data")]
    assert refs and all(v.startswith(("data:", "#")) for v in refs)
    assert "http://" not in html and "https://" not in html and "url(" not in html


def test_report_reference_output_rules_and_errors(files, tmp_path):
    out = tmp_path / "r.html"
    assert run("report", files["no_truth"], "--reference", files["png"], "-o", out).exit_code == 0
    assert parse(out).rows["evaluation"] == 2 and "PSNR" in out.read_text()
    assert "already exists" in err_line(run("report", files["no_truth"], "-o", out))
    assert run("report", files["no_truth"], "-o", out, "--overwrite", "-q").exit_code == 0
    assert "must end in .html" in err_line(run("report", files["no_truth"], "-o", tmp_path / "r.txt"))
    assert "file not found" in err_line(run("report", tmp_path / "none.h5", "-o", tmp_path / "n.html"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # nothing else, no temporary files


@pytest.mark.slow
def test_report_renders_in_headless_chromium(files, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not installed (Debian package chromium)")
    out = tmp_path / "report.html"
    assert run("report", files["measurement"], files["posterior"], "-o", out).exit_code == 0
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,1600",
                    out.as_uri()], capture_output=True, timeout=120, check=False)
    assert shot.exists(), "Chromium wrote no screenshot"
    from skimage import io

    img = io.imread(shot)
    assert img.shape[0] == 1600 and img.shape[1] == 1280
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 50  # text and figures, not one colour
