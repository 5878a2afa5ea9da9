"""The benchmark recorder (benchmarks/_results.py): a run goes to the day's log and replaces its summary section."""

import importlib.util
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("benchmarks_results", REPO / "benchmarks" / "_results.py")
_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_results)
DAY1 = datetime(2026, 12, 3, 9, 5, tzinfo=timezone.utc)
DAY2 = datetime(2026, 12, 4, 10, 30, tzinfo=timezone.utc)

OTHER = """<!-- bench: operators -->
## Operators (2026-11-28 17:38 UTC)

| size | ratio |
|---|---|
| 256² | 1.012 |

<!-- reading -->
Reading (2026-11-28): an unrelated section, left as it is.
<!-- /reading -->
<!-- /bench -->
"""

READING = """<!-- reading -->
Reading (2026-12-03): written by hand after the first run.
<!-- /reading -->"""


@pytest.fixture(autouse=True)
def _no_torch_machine(monkeypatch):
    """A fixed machine line: the recorder's text, not this machine's torch, is under test."""
    monkeypatch.setattr(_results, "machine", lambda threads=None: f"2 cores, test CPU, {threads} thread(s)")
    monkeypatch.delenv(_results.ENV_DIR, raising=False)


def _record(root, table, now, title="Patch priors: superres", **kw):
    return _results.append_results(None, title, "patch_priors.py", ["superres", "--images", "2"], table,
                                   threads=1, root=root, now=now, **kw)


def _sections(text):
    return re.findall(r"^<!-- bench: (\S+) -->$", text, flags=re.M)


def test_a_second_run_replaces_its_section_and_both_stay_in_the_log(tmp_path):
    summary = tmp_path / "RESULTS.md"
    intro = "# Benchmark results\n\nIntro text outside every section.\n\n"
    summary.write_text(intro + OTHER)
    first = "| method | PSNR |\n|---|---|\n| tv | 28.60 |\n"
    second = "| method | PSNR |\n|---|---|\n| tv | 28.61 |\n"

    assert _record(tmp_path, first, DAY1) == (summary, tmp_path / "log" / "2026-12-03.md")
    text = summary.read_text()
    assert _sections(text) == ["operators", "patch-priors-superres"]  # a new key is appended
    # a reading written by hand into the new section
    text = text.replace("| tv | 28.60 |\n\n<!-- /bench -->", "| tv | 28.60 |\n\n" + READING + "\n<!-- /bench -->")
    summary.write_text(text)

    _record(tmp_path, second, DAY2)
    text = summary.read_text()
    assert text.startswith(intro + OTHER)  # the intro and the unrelated section, byte for byte
    assert _sections(text) == ["operators", "patch-priors-superres"]
    section = text[text.index("<!-- bench: patch-priors-superres -->"):]
    assert "28.61" in section and "28.60" not in text
    assert "## Patch priors: superres (2026-12-04 10:30 UTC)" in section
    assert "Command: `python benchmarks/patch_priors.py superres --images 2`" in section
    assert "Machine: 2 cores, test CPU, 1 thread(s)" in section
    assert READING in section and section.count("<!-- reading -->") == 1
    assert section.rstrip().endswith(READING + "\n<!-- /bench -->")

    log1, log2 = (tmp_path / "log" / f"2026-12-0{d}.md" for d in (3, 4))
    assert log1.read_text().startswith("# Benchmark log, 2026-12-03 (UTC)\n")
    assert "## Patch priors: superres (2026-12-03 09:05 UTC)" in log1.read_text() and "28.60" in log1.read_text()
    assert "28.61" in log2.read_text() and "28.60" not in log2.read_text()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no temporary file left behind


def test_the_same_day_appends_to_one_log_and_keeps_what_it_held(tmp_path):
    _record(tmp_path, "| a |\n|---|\n| 1 |", DAY1)
    log = tmp_path / "log" / "2026-12-03.md"
    before = log.read_text()
    _record(tmp_path, "| a |\n|---|\n| 2 |", DAY1.replace(hour=11))
    after = log.read_text()
    assert after.startswith(before) and after.count("## Patch priors: superres") == 2
    summary = (tmp_path / "RESULTS.md").read_text()
    assert summary.startswith(_results.SUMMARY_HEADER) and "| 2 |" in summary and "| 1 |" not in summary


def test_sub_headings_give_one_section_each_and_a_stopped_run_goes_to_the_log_only(tmp_path):
    table = ("### Scatterometry surrogate: the statistical floor\n\n| N | sum |\n|---|---|\n| 4 | 0.221 |\n\n"
             "### GIXRF (Ni on Si, Ni Kα at 10 keV): recovery and flow vs MCMC\n\n| posterior | ED |\n|---|---|\n")
    _record(tmp_path, table, DAY1, title="Metrology")
    text = (tmp_path / "RESULTS.md").read_text()
    assert _sections(text) == ["metrology-scatterometry-surrogate-the-statistical-floor",
                               "metrology-gixrf-recovery-and-flow-vs-mcmc"]
    assert "## Metrology: Scatterometry surrogate: the statistical floor (2026-12-03 09:05 UTC)" in text
    assert "### " not in text

    _record(tmp_path, "| half |", DAY1, title="Patch priors: ct, stopped")
    assert (tmp_path / "RESULTS.md").read_text() == text
    assert "## Patch priors: ct, stopped" in (tmp_path / "log" / "2026-12-03.md").read_text()


def test_the_environment_variable_moves_summary_and_log(tmp_path, monkeypatch):
    monkeypatch.setenv(_results.ENV_DIR, str(tmp_path / "elsewhere"))
    summary, log = _results.append_results(tmp_path / "ignored.md", "Operators", "operators.py", [], "| x |",
                                           threads=2, now=DAY1)
    assert summary == tmp_path / "elsewhere" / "RESULTS.md" and log == tmp_path / "elsewhere" / "log" / "2026-12-03.md"
    assert summary.is_file() and log.is_file() and not (tmp_path / "ignored.md").exists()


def test_a_section_without_its_end_marker_is_not_swallowed():
    broken = "<!-- bench: a -->\n## A\n\n<!-- bench: b -->\n## B\n\n<!-- /bench -->\n"
    out = _results.replace_section(broken, "a", "## A again")
    assert out.startswith(broken) and out.endswith("<!-- bench: a -->\n## A again\n\n<!-- /bench -->\n")


@pytest.mark.parametrize("title, key", [
    ("Patch priors: superres", "patch-priors-superres"),
    ("Patch priors: epll-speed", "patch-priors-epll-speed"),
    ("patchNR MAP against a reference-style loop", "patchnr-map-against-a-reference-style-loop"),
    ("Sliced MMD gradient (d = 784, P = 500, float32)", "sliced-mmd-gradient"),
    ("LoDoPaB-CT protocol (FBP through the CLI)", "lodopab-ct-protocol"),
    ("Metrology: Scatterometry surrogate (3 → 23): EM-DeepGEM noise estimation",
     "metrology-scatterometry-surrogate-em-deepgem-noise-estimation"),
])
def test_keys(title, key):
    assert _results.bench_key(title) == key


def test_the_summary_in_the_repository_has_one_well_formed_section_per_key():
    text = (REPO / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    keys = _sections(text)
    assert len(keys) == len(set(keys)) == len(text.split("\n<!-- /bench -->\n")) - 1
    assert [m.group("key") for m in _results._SECTION.finditer(text)] == keys
    for key in keys:  # recording into the real summary changes that section only
        out = _results.replace_section(text, key, "## X")
        assert _sections(out) == keys and len(out) < len(text)
