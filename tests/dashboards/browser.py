"""Headless Chromium (Debian's `chromium`) for the browser tests, with every network feature off, and a small
DOM reader for what `--dump-dom` prints.

    from browser import CHROMIUM, SKIP_REASON, parse_dom, render
    root = parse_dom(render("file:///.../pareto_report.html", tmp_path, png=tmp_path / "shot.png"))
    plot = root.find(id="front-0")
    points = plot.select("g.scatterlayer", "path.point")
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
SKIP_REASON = "run `apt-get install -y chromium` (Debian) to enable the browser test"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars"]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _run(args: list[str], profile: Path, timeout: float) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=timeout, start_new_session=True)


def render(url: str, workdir: Path, png: Path | None = None, budget_ms: int = 5000, window: str = "1300,2400",
           timeout: float = 120) -> str:
    """Load `url`, let its scripts run for `budget_ms` of virtual time, and return the DOM (`--dump-dom`);
    with `png`, the same run also takes a screenshot of the window (`--screenshot`)."""
    args = [f"--virtual-time-budget={budget_ms}", f"--window-size={window}", "--dump-dom"]
    if png is not None:
        args.append(f"--screenshot={png}")
    res = _run([*args, url], workdir / "chromium-profile", timeout)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    assert png is None or png.is_file(), f"no screenshot: {res.stderr.decode(errors='replace')[-2000:]}"
    return res.stdout.decode("utf-8", errors="replace")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list["Node"] = field(default_factory=list)
    text: str = ""

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def matches(self, selector: str) -> bool:
        """tag.class1.class2 (tag or classes may be left out)."""
        tag, *classes = selector.split(".")
        return (not tag or self.tag == tag) and set(classes) <= self.classes

    def find(self, id: str) -> "Node | None":
        return next((n for n in self.iter() if n.attrs.get("id") == id), None)

    def find_all(self, selector: str) -> list["Node"]:
        return [n for n in self.iter() if n is not self and n.matches(selector)]

    def select(self, *selectors: str) -> list["Node"]:
        """Descendant selection: nodes matching the last selector inside ones matching the earlier ones."""
        nodes = [self]
        for sel in selectors:
            found: list[Node] = []
            seen: set[int] = set()
            for n in nodes:
                for m in n.find_all(sel):
                    if id(m) not in seen:
                        seen.add(id(m))
                        found.append(m)
            nodes = found
        return nodes

    def all_text(self) -> str:
        """The text content in document order (as `textContent`, without scripts and styles)."""
        return "".join(n.text for n in self.iter())


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if self.stack[-1].tag not in ("script", "style"):
            self.stack[-1].children.append(Node("#text", text=data))


def parse_dom(html_text: str) -> Node:
    b = _Builder()
    b.feed(html_text)
    b.close()
    return b.root
