"""Sphinx directives of leukfeat's documentation, read from the repository's files.

``.. leukfeat-dependencies::``
    The base install's requirements, from ``pyproject.toml``
    (``[project] dependencies``), as one paragraph of package names.
``.. leukfeat-extras::``
    A table of the optional extras (``[project.optional-dependencies]``):
    the name, what it is for (the comment above it in ``pyproject.toml``) and
    the packages it adds. Both stay true when the packaging changes.
``.. leukfeat-changelog::``
    ``CHANGELOG.md`` (Keep a Changelog) from the repository root, converted
    to reStructuredText when its Markdown is of the simple kind that format
    uses (headings, bullet lists, links, inline code), shown as Markdown
    text otherwise, and a short note when the file does not exist.

Nothing here reaches the network: every input is a file of the checkout.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles



def _repo_root() -> Path:
    """The checkout these pages belong to: the folder above ``docs/``, or
    (for a copy of ``docs/`` built elsewhere, as the tests do) the one above
    the imported ``leukfeat`` package."""
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").is_file():
        return here
    import leukfeat

    return Path(leukfeat.__file__).resolve().parents[1]


REPO_ROOT = _repo_root()
PYPROJECT = REPO_ROOT / "pyproject.toml"
CHANGELOG = REPO_ROOT / "CHANGELOG.md"


def _load_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with open(path, "rb") as f:
        return tomllib.load(f)


def extra_comments(text: str) -> dict:
    """``{extra: comment}``: the ``#`` lines just above each extra in
    ``[project.optional-dependencies]``, joined into one sentence."""
    comments: dict = {}
    in_section, pending = False, []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            in_section = stripped == "[project.optional-dependencies]"
            pending = []
            continue
        if not in_section:
            continue
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*=", stripped)
        if match:
            comments[match.group(1)] = " ".join(pending)
        if not stripped or match:
            pending = []
    return comments


def _rst_text(text: str) -> str:
    """A comment of ``pyproject.toml`` as reST: `x` becomes ``x``."""
    return re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", text)


class _RstDirective(SphinxDirective):
    """Produces reST text and parses it in place."""

    has_content = False

    def rst(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self):
        container = nodes.container()
        lines = StringList(self.rst().splitlines(), source=self.get_source_info()[0])
        nested_parse_with_titles(self.state, lines, container)
        return container.children


class DependenciesDirective(_RstDirective):
    def rst(self) -> str:
        self.env.note_dependency(str(PYPROJECT))
        deps = _load_toml(PYPROJECT)["project"].get("dependencies", [])
        return ", ".join(f"``{d}``" for d in deps) + "."


class ExtrasDirective(_RstDirective):
    def rst(self) -> str:
        self.env.note_dependency(str(PYPROJECT))
        extras = _load_toml(PYPROJECT)["project"].get("optional-dependencies", {})
        comments = extra_comments(PYPROJECT.read_text(encoding="utf-8"))
        out = [".. list-table::", "   :header-rows: 1", "   :widths: 14 46 40", "",
               "   * - extra", "     - for", "     - adds"]
        for name, packages in extras.items():
            what = _rst_text(comments.get(name, "")) or "\\ "
            adds = ", ".join(f"``{p}``" for p in packages) or "\\ "
            out += [f"   * - ``{name}``", f"     - {what}", f"     - {adds}"]
        return "\n".join(out)


# -- CHANGELOG.md ---------------------------------------------------------------------
_HEADING = {2: "-", 3: "~", 4: "^"}
_LINK_DEF = re.compile(r"^\[([^\]]+)\]:\s*(\S+)\s*$")


def markdown_to_rst(text: str) -> str:
    """The reST of a Keep-a-Changelog file (its first ``#`` heading dropped:
    the page has its own title). Not a general Markdown converter: what it
    does not know is checked by :func:`_clean_rst` and shown as Markdown."""
    lines = text.splitlines()
    links = {m.group(1): m.group(2) for m in map(_LINK_DEF.match, lines) if m}

    def inline(s: str) -> str:
        s = re.sub(r"(?<!`)`([^`]+)`(?!`)", r"``\1``", s)
        s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r"`\1 <\2>`__", s)
        return s

    out: list = []
    for line in lines:
        if _LINK_DEF.match(line):
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            level, title = len(heading.group(1)), heading.group(2)
            if level == 1:
                continue
            ref = re.match(r"^\[([^\]]+)\](.*)$", title)
            if ref and ref.group(1) in links:
                title = f"`{ref.group(1)} <{links[ref.group(1)]}>`__{inline(ref.group(2))}"
            elif ref:
                title = ref.group(1) + inline(ref.group(2))
            else:
                title = inline(title)
            out += ["", title, _HEADING.get(level, "^") * max(len(title), 4), ""]
            continue
        out.append(inline(line))
    return "\n".join(out).strip() + "\n"


def _clean_rst(rst: str) -> bool:
    """Whether plain docutils parses ``rst`` without a warning or error."""
    from docutils.core import publish_doctree

    stream = io.StringIO()
    try:
        tree = publish_doctree(rst, settings_overrides={
            "report_level": 2, "halt_level": 5, "warning_stream": stream})
    except Exception:
        return False
    return not stream.getvalue() and not any(
        msg["level"] >= 2 for msg in tree.findall(nodes.system_message))


class ChangelogDirective(_RstDirective):
    def rst(self) -> str:
        self.env.note_dependency(str(CHANGELOG))
        if not CHANGELOG.is_file():
            return (".. note::\n\n   ``CHANGELOG.md`` is not in this checkout yet; the "
                    "changes of each release are listed there once it is.")
        text = CHANGELOG.read_text(encoding="utf-8")
        converted = markdown_to_rst(text)
        if _clean_rst(converted):
            return converted
        body = "\n".join("   " + line for line in text.splitlines())
        return f".. code-block:: markdown\n\n{body}\n"


def setup(app):
    app.add_directive("leukfeat-dependencies", DependenciesDirective)
    app.add_directive("leukfeat-extras", ExtrasDirective)
    app.add_directive("leukfeat-changelog", ChangelogDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
