"""Every relative link in the user-facing markdown resolves: the file exists, and a ``#anchor``
names a heading of the file it points into, slugged as GitHub does (lowercase; punctuation
dropped except ``-`` and ``_``; each space a ``-``; a repeated heading gets ``-1``, ``-2``)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md")),
         REPO / "ops" / "README.md"]

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+).*?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose(text: str) -> list[str]:
    """The lines, those of fenced code blocks blanked (a heading or link in code is neither)."""
    lines, fenced = [], False
    for line in text.splitlines():
        fence = bool(_FENCE.match(line))
        fenced ^= fence
        lines.append("" if fenced or fence else line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text counts
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for line in _prose(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            repeats[base] = repeats.get(base, -1) + 1
            found.add(f"{base}-{repeats[base]}" if repeats[base] else base)
    return frozenset(found)


def links(page: Path) -> list[tuple[int, str]]:
    return [(number, match.group(1)) for number, line in enumerate(_prose(page.read_text(encoding="utf-8")), 1)
            for match in _LINK.finditer(_CODE_SPAN.sub("", line))]


def broken(page: Path, root: Path = REPO) -> list[str]:
    found = []
    for number, target in links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: (not checked here)
            continue
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(root)}:{number}: {target}"
        if not goal.exists():
            found.append(f"{where} (no such file)")
        elif anchor and goal.suffix == ".md" and anchor not in anchors(goal):
            found.append(f"{where} (no heading #{anchor} in {goal.relative_to(root)})")
    return found


def test_slugs_follow_githubs_rules() -> None:
    assert slug("3a. A server: nginx in front") == "3a-a-server-nginx-in-front"
    assert slug("4. The number's webhook, through the API") == "4-the-numbers-webhook-through-the-api"
    assert slug("09 — Install, deploy, publish") == "09--install-deploy-publish"
    assert slug("What `llc-phone serve` insists on") == "what-llc-phone-serve-insists-on"
    assert slug("LLC_PUBLIC_URL and [the proxy](x.md)") == "llc_public_url-and-the-proxy"


def test_the_checker_finds_links(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n## Top\n\n[a](#top-1) [b](#nope) `[c](#code)` [d](missing.md) [e](page.md#top)\n"
                    "```\n[f](#fenced)\n```\n[g](https://example.com/#x)\n")
    assert [target for _, target in links(page)] == ["#top-1", "#nope", "missing.md", "page.md#top",
                                                     "https://example.com/#x"]
    assert [line.split(": ", 1)[1] for line in broken(page, tmp_path)] == [
        "#nope (no heading #nope in page.md)", "missing.md (no such file)"]


def test_every_relative_link_and_anchor_in_the_docs_resolves() -> None:
    found = [line for page in PAGES for line in broken(page)]
    assert not found, "broken links:\n" + "\n".join(found)
