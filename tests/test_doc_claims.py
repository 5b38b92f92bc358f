"""Issue 10 item 12: one measured time claim for the main job (``dcmnet train --name demo``)
and one for the test suite across README.md, BENCHMARKS.md and docs/*.md; every other
page refers to it instead of quoting its own number."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: a paragraph is about the main job / the test suite when it names one of these
SUBJECTS = {"main job": re.compile(r"main[ -]job|train --name demo|200 epochs", re.I),
            "test suite": re.compile(r"test suite|\bpytest\b", re.I)}
#: a duration: "541 s", "10–15 minutes", "9-minute", "about 8 min", "2 h"
TIME = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:\s*[–-]\s*\d+(?:\.\d+)?)?)[\s-]*"
                  r"(s|sec|seconds?|min|minutes?|h|hours?)\b(?!\s*(?:per\b|/))", re.I)
_UNIT_S = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "min": 60, "minute": 60,
           "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600}


def _paragraphs(text: str):
    """Prose paragraphs (fenced code blocks, which hold shown output, are left out)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return [p for p in re.split(r"\n\s*\n", prose) if p.strip()]


def time_claims(texts: dict) -> dict:
    """``{subject: {normalised claim (seconds): [(file, phrase)]}}`` of every duration in a
    paragraph about the main job or the test suite."""
    out = {s: {} for s in SUBJECTS}
    for name, text in texts.items():
        for para in _paragraphs(text):
            for subject, pat in SUBJECTS.items():
                if not pat.search(para):
                    continue
                for m in TIME.finditer(para):
                    nums = [float(x) for x in re.split(r"\s*[–-]\s*", m.group(1))]
                    key = "–".join(f"{x * _UNIT_S[m.group(2).lower()]:g} s" for x in nums)
                    out[subject].setdefault(key, []).append((name, m.group(0).strip()))
    return out


def _docs() -> dict:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {str(f.relative_to(ROOT)): f.read_text() for f in files if f.exists()}


@pytest.mark.parametrize("subject", sorted(SUBJECTS))
def test_one_time_claim_per_subject(subject):
    claims = time_claims(_docs())[subject]
    assert len(claims) <= 1, (
        f"{len(claims)} different time claims for the {subject} (keep the one measured claim "
        f"in README.md and refer to it): {claims}")


def test_readme_claim_is_the_one_with_its_load():
    claims = time_claims(_docs())
    where = {f for hits in claims["main job"].values() for f, _ in hits}
    assert "README.md" in where
    readme = _docs()["README.md"]
    phrase = next(ph for hits in claims["main job"].values() for f, ph in hits
                  if f == "README.md")
    para = next(p for p in _paragraphs(readme) if phrase in p)
    assert "load" in para and "CPU cores" in para


def test_scanner_finds_the_old_conflicting_claims():
    """The claims the issue found (10–15 min, 8 min, 9-minute, 541 s) are 4 distinct ones."""
    old = {"quickstart.md": "trains DCM-net for 200 epochs, 10–15 minutes on 2 CPU cores.",
           "analysis.md": "the demo (`dcmnet train --name demo`; about 8 minutes on 2 cores)",
           "BENCHMARKS.md": "the 9-minute main job was not re-run\n\nnot this: 3 min",
           "README.md": "Measured once: 541 s wall time for 200 epochs (2.0 s per epoch)",
           "suite.md": "the test suite runs in under 15 minutes; pytest -q"}
    claims = time_claims(old)
    assert sorted(claims["main job"]) == ["480 s", "540 s", "541 s", "600 s–900 s"]
    assert list(claims["test suite"]) == ["900 s"]
