"""Every relative link in the README and docs/ points to a file that exists, and to a heading
that exists in it (GitHub's anchor rules).

A broken link in a product page is a bug a reader hits first; this test finds one before they do.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "MODEL_CARD.md", ROOT / "benches" / "README.md",
                ROOT / "train" / "tiny" / "README.md", *(ROOT / "docs").glob("*.md")])
# Pages other branches are writing; README links to them already. A missing one is allowed, a
# present one is checked like any other (so the list can only hide a page that is not there).
PENDING: set[str] = set()  # docs a branch in flight will add

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    return _CODE.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces -> -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").strip().lower()
    kept = [c for c in text if c in " -_" or unicodedata.category(c)[0] in "LNM"]
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    out: set[str] = set()
    seen: Counter[str] = Counter()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        out.add(base if not seen[base] else f"{base}-{seen[base]}")
        seen[base] += 1
    return out


def links(page: Path) -> list[str]:
    return [m.group(1) for m in _LINK.finditer(_prose(page.read_text(encoding="utf-8")))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", m.group(1))]  # http:, mailto:, ...


@pytest.mark.parametrize(("heading", "anchor"), [
    ("Runtime vs peers", "runtime-vs-peers"),
    ("Setup (PyPI only; no hub access needed)", "setup-pypi-only-no-hub-access-needed"),
    ("Beyond parity: longer quantization blocks", "beyond-parity-longer-quantization-blocks"),
    ("The `KVCache` stays on 4 KiB pages", "the-kvcache-stays-on-4-kib-pages"),
    ("Privacy, availability and the remote client", "privacy-availability-and-the-remote-client"),
    ("Export → package", "export--package"),
])
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_duplicate_headings_get_numbered_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Results\n\n```\n# not a heading\n```\n## Results\n### Results\n")
    assert anchors(page) == {"results", "results-1", "results-2"}


def test_links_skip_code_and_absolute_urls(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) `[b](b.md)` ![c](c.png#x)\n```\n[d](d.md)\n```\n"
                    "[e](https://example.com/e.md) [f](#f)\n")
    assert links(page) == ["a.md", "c.png#x", "#f"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for link in links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        name = target.relative_to(ROOT).as_posix() if target.is_relative_to(ROOT) else str(target)
        if not target.exists():
            if name not in PENDING:
                broken.append(f"{link}: no file {name}")
            continue
        if anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: {name} has no heading with the anchor #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("Install and test", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert command is not None, "README: no bash block after 'Install and test'"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command.group(1).strip() in [line.strip() for line in ci]


def test_readme_stays_a_product_page() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 320, f"README.md has {lines} lines: move depth into docs/ (STYLE.md, 13)"


_REPO_PATH = re.compile(r"`((?:qwen_edge|export|csrc|benches|tests|train|examples|docs)/"
                        r"[\w/.-]+\.(?:py|pyi|cpp|h|md|jsonl|html|png))`")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_source_files_named_in_the_docs_exist(page: Path) -> None:
    """`qwen_edge/cache.py` in prose must still be there after a file moves."""
    named = _REPO_PATH.findall(_FENCE.sub("", page.read_text(encoding="utf-8")))
    missing = sorted({p for p in named if not (ROOT / p).exists() and p not in PENDING})
    assert not missing, f"{page.relative_to(ROOT)} names files that do not exist: {missing}"
