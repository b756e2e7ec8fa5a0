"""Every link and file reference stays inside the repository.

A clone has the repository and nothing else: a Markdown link to a path outside it, a
``*.md`` name in a docstring or comment that no file of the repository carries, or a path
into a sibling checkout is a dead end for its reader. http(s) links are fine. Pure: reads
files (and asks git which ones it tracks), starts no server.
"""

from __future__ import annotations

import functools
import io
import os
import re
import subprocess
import tokenize
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

from agent.analysis.catalog import DOMAINS

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = ("../" + "shared", "/work/" + "shared")
"""Paths into the checkout the project was first written next to (split: not in this file)."""

PY_FOLDERS = ("agent", "protocols", "scripts", "tests")
"""Folders whose Python docstrings and comments may name no ``*.md`` file the repo lacks."""

ALLOWED_SCHEMES = ("http", "https", "mailto")

_SKIP_PARTS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+[\"'(][^)]*)?\)"
)
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_HTML_ATTR = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_MD_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w.-]*[\w-]\.md)(?![\w-])")

Problem = tuple[Path, int, str]

_PROSE = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}
"""Comments and string literals (docstrings among them); f-string text on Python ≥ 3.12."""


@functools.cache
def repo_files() -> tuple[Path, ...]:
    """Files git tracks or would track (untracked, not ignored); without git, every file."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        candidates = [
            p
            for p in ROOT.rglob("*")
            if not _SKIP_PARTS.intersection(p.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)
        ]
    else:
        candidates = [ROOT / name for name in listed.split("\0") if name]
    return tuple(sorted(p for p in candidates if p.is_file()))


@functools.cache
def file_names() -> frozenset[str]:
    return frozenset(p.name for p in repo_files())


def text_of(path: Path) -> str | None:
    """The file as UTF-8 text, or None for a binary file."""
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def inside(path: str) -> bool:
    """Whether ``path`` (absolute, not yet normalised) lies inside the repository."""
    normal = os.path.normpath(path)
    return normal == str(ROOT) or normal.startswith(str(ROOT) + os.sep)


# --- Markdown links ------------------------------------------------------------------------


def markdown_lines(text: str) -> Iterator[tuple[int, str]]:
    """Numbered lines outside fenced code blocks, code spans blanked out."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1) == fence:
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        yield number, _CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def link_targets(text: str) -> Iterator[tuple[int, str]]:
    for number, line in markdown_lines(text):
        for pattern in (_INLINE_LINK, _REFERENCE_DEF, _HTML_ATTR):
            for match in pattern.finditer(line):
                yield number, match.group(1)


def link_problem(source: Path, target: str) -> str | None:
    """Why ``target``, linked from ``source``, leaves the repository (None when it does not)."""
    if not target or target.startswith("#"):
        return None  # a heading of the same page
    scheme = _SCHEME.match(target)
    if scheme:
        if scheme.group(1).lower() in ALLOWED_SCHEMES:
            return None
        return f"link {target!r}: only http(s) and mailto links may leave the repository"
    path = unquote(re.split(r"[#?]", target, maxsplit=1)[0])
    if not path:
        return None
    if path.startswith("/"):
        return f"link {target!r}: an absolute path, not one relative to {rel(source)}"
    resolved = os.path.join(source.parent, path)
    if not inside(resolved):
        return f"link {target!r} leaves the repository"
    if not Path(resolved).exists():
        return f"link {target!r}: no such file or folder in the repository"
    return None


def markdown_problems() -> list[Problem]:
    problems: list[Problem] = []
    for path in repo_files():
        if path.suffix != ".md":
            continue
        text = text_of(path)
        if text is None:
            continue
        for number, target in link_targets(text):
            why = link_problem(path, target)
            if why is not None:
                problems.append((path, number, why))
    return problems


# --- *.md names in Python docstrings and comments ------------------------------------------


def prose_tokens(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and string literal (docstrings among them).

    Source that does not tokenize (a file caught half-written) is read line by line whole:
    more text than its prose, never less.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        yield from enumerate(source.splitlines(), 1)
        return
    for token in tokens:
        if token.type in _PROSE:
            for offset, line in enumerate(token.string.splitlines()):
                yield token.start[0] + offset, line


def md_mentions(line: str) -> Iterator[str]:
    """Every ``*.md`` path or file name in ``line``, URLs left out."""
    for match in _MD_NAME.finditer(_URL.sub(" ", line)):
        yield match.group(1)


def mention_problem(source: Path, mention: str) -> str | None:
    """Why ``mention`` (a ``*.md`` name in ``source``) names nothing in the repository."""
    if "/" not in mention:
        if mention in file_names():
            return None
        return f"{mention!r}: no file of that name in the repository"
    for base in (str(ROOT), str(source.parent)):
        resolved = os.path.join(base, mention)
        if inside(resolved) and Path(resolved).is_file():
            return None
    if not all(inside(os.path.join(b, mention)) for b in (str(ROOT), str(source.parent))):
        return f"{mention!r} points outside the repository"
    return f"{mention!r}: no such file in the repository"


def python_problems() -> list[Problem]:
    problems: list[Problem] = []
    for path in repo_files():
        if path.suffix != ".py" or path.relative_to(ROOT).parts[0] not in PY_FOLDERS:
            continue
        if path == Path(__file__).resolve():
            continue  # its own examples of bad names, below
        text = text_of(path)
        if text is None:
            continue
        for number, line in prose_tokens(text):
            for mention in md_mentions(line):
                why = mention_problem(path, mention)
                if why is not None:
                    problems.append((path, number, why))
    return problems


def prose_problems() -> list[Problem]:
    """``*.md`` names in the text of Markdown files and of everything under ``deploy/``."""
    problems: list[Problem] = []
    for path in repo_files():
        if path.suffix != ".md" and path.relative_to(ROOT).parts[0] != "deploy":
            continue
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for mention in md_mentions(line):
                why = mention_problem(path, mention)
                if why is not None:
                    problems.append((path, number, why))
    return problems


# --- the tests -------------------------------------------------------------------------------


def report(problems: list[Problem]) -> str:
    return "\n".join(f"{rel(path)}:{number}: {why}" for path, number, why in problems)


def test_markdown_links_stay_inside_the_repository() -> None:
    problems = markdown_problems()
    assert not problems, "links that leave the repository or lead nowhere:\n" + report(problems)


def test_md_files_named_in_python_exist() -> None:
    problems = python_problems()
    assert not problems, "*.md files named in docstrings or comments:\n" + report(problems)


def test_md_files_named_in_docs_and_deploy_exist() -> None:
    problems = prose_problems()
    assert not problems, "*.md files named in documents or deploy files:\n" + report(problems)


def test_no_file_points_into_a_sibling_checkout() -> None:
    problems: list[Problem] = []
    for path in repo_files():
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            problems.extend((path, number, f"mentions {f!r}") for f in FORBIDDEN if f in line)
    assert not problems, "paths outside the repository:\n" + report(problems)


def test_design_doc_lists_the_catalog_by_domain() -> None:
    """docs/design.md's table of metrics by domain is the catalog's, in its order."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## The metrics it judges", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\w+) \| ([\w, ]+) \|$", section, flags=re.MULTILINE)
    listed = {d: tuple(m.strip() for m in ms.split(",")) for d, ms in rows if d != "domain"}
    assert listed == dict(DOMAINS)


# --- the checks themselves -------------------------------------------------------------------


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    readme = ROOT / "README.md"
    assert link_problem(readme, "docs/design.md") is None
    assert link_problem(readme, "docs/methods.md#2-trend") is None
    assert link_problem(readme, "#quick-start") is None
    assert link_problem(readme, "https://nats.io") is None
    assert link_problem(readme, "../" + "shared/DESIGN.md") is not None
    assert link_problem(readme, "docs/nothing-here.md") is not None
    assert link_problem(readme, "/etc/passwd") is not None
    assert link_problem(readme, "file:///etc/passwd") is not None
    nested = ROOT / "deploy" / "nats" / "README.md"
    assert link_problem(nested, "../../docs/protocol.md") is None
    assert link_problem(nested, "../../../outside.md") is not None

    targets = list(link_targets("[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n[d]: w.md\n"))
    assert targets == [(1, "x.md"), (5, "w.md")]

    line = "see docs/protocol.md §2, README.md and https://example.com/NOTES.md"
    assert list(md_mentions(line)) == ["docs/protocol.md", "README.md"]
    source = ROOT / "agent" / "__init__.py"
    assert mention_problem(source, "docs/protocol.md") is None
    assert mention_problem(source, "methods.md") is None
    assert mention_problem(source, "SOMETHING_ELSE.md") is not None
    assert mention_problem(source, "../../" + "shared/SOMETHING.md") is not None
    code = '"""Docstring naming A.md."""\nx = 1  # and B.md\n'
    assert [(n, list(md_mentions(t))) for n, t in prose_tokens(code)] == [
        (1, ["A.md"]),
        (2, ["B.md"]),
    ]
    broken = 'x = """unterminated, naming C.md\n'
    assert [m for _, t in prose_tokens(broken) for m in md_mentions(t)] == ["C.md"]
