"""The docs check: every relative link in README.md and docs/*.md points at a file that exists, every docs page is
linked from the README, and every `unlearn-sweep <command>` written in a code block or a table is a command the
CLI has (so a renamed or removed command breaks this test, not a reader's copy-paste).

    .venv/bin/python -m pytest tests/test_docs.py -q        # about a second
"""

from __future__ import annotations

import re
from pathlib import Path

import typer

from unlearn_sweep.commands import register_all

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
COMMAND = re.compile(r"unlearn-sweep ([a-z][a-z-]*)")


def cli_commands() -> set[str]:
    app = typer.Typer()
    register_all(app)
    return {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = {Path(t).name for t in LINK.findall(readme) if t.startswith("docs/")}
    pages = {p.name for p in (REPO / "docs").glob("*.md")}
    assert pages <= linked, sorted(pages - linked)


def test_commands_in_the_docs_exist():
    known = cli_commands()
    used = {(page.relative_to(REPO), cmd) for page in PAGES
            for cmd in COMMAND.findall(page.read_text(encoding="utf-8"))}
    unknown = sorted(f"{page}: unlearn-sweep {cmd}" for page, cmd in used if cmd not in known)
    assert not unknown, unknown
    assert {"run", "plan", "pareto", "export"} <= {cmd for _, cmd in used}  # the check reads what it should
