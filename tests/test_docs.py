"""The docs cannot drift: generated regions match the code, links resolve, reference tables are whole."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from ganbridge import reference

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`]*`")
# [text](target) and ![alt](target), with an optional <...> around the target and a "title" after it.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")


def markdown_pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "plugins" / "daw" / "README.md"]
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in pages if p.is_file()]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks: a link or heading in a code sample is not one."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(text):
        if definition := REFERENCE_DEFINITION.match(line):
            found.append((number, definition[1]))
            continue
        found += [(number, m[1]) for m in LINK.finditer(INLINE_CODE.sub("", line))]
    return found


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes for a page's headings, numbered as it numbers repeated ones."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        if not (m := HEADING.match(line)):
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m[2])  # a link in a heading: its text counts
        base = reference.slug(text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def is_external(target: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE))


@pytest.fixture(scope="module")
def renderer() -> reference.Renderer:
    return reference.Renderer(ROOT)  # loads the shipped generators once for every page


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_generated_regions_match_the_code(page, renderer):
    problems = [p for p in reference.problems(ROOT, renderer) if p.startswith(f"{page}:")]
    assert not problems, "; ".join(problems) + " (from the repository root)"


def test_rewriting_twice_changes_nothing(renderer):
    for page in reference.PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        once = reference.regenerate(text, page, renderer)
        assert reference.regenerate(once, page, renderer) == once, page


def test_every_relative_link_points_at_a_file_and_heading():
    broken = []
    for page in markdown_pages():
        name = page.relative_to(ROOT).as_posix()
        for number, target in links(page.read_text(encoding="utf-8")):
            if not target or is_external(target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (page.parent / file_part).resolve() if file_part else page
            if not resolved.exists():
                broken.append(f"{name}:{number}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{name}:{number}: {target} (no heading #{anchor} there)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_checker_sees_what_it_must():
    """The parser behind the link test: links in code are not links, images and anchors are."""
    text = (
        'See [a](x.md#b) and ![pic](img.png "a title") and `[not](code.md)`.\n'
        "```sh\n[also not](fenced.md)\n```\n"
        "[ref]: ref.md\n"
    )
    assert [target for _, target in links(text)] == ["x.md#b", "img.png", "ref.md"]
    assert reference.slug("`ganbridge plugin build`") == "ganbridge-plugin-build"
    assert reference.slug("Protocol v1 (WebSocket)") == "protocol-v1-websocket"
    assert reference.slug("The shipped model: `glyphs`") == "the-shipped-model-glyphs"


SHELL_FENCES = {"sh", "bash", "shell", "console"}


def shell_commands(text: str) -> list[tuple[int, list[str]]]:
    """The `ganbridge ...` commands in a page's shell code blocks, as argument lists, with
    backslash-continued lines joined and `# comments` dropped."""
    found, block, fenced, shell = [], [], False, False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            shell = fenced and line.strip().strip("`~").strip() in SHELL_FENCES
            block = []
            continue
        if not shell:
            continue
        block.append(line.rstrip())
        if block[-1].endswith("\\"):
            block[-1] = block[-1][:-1]
            continue
        joined, block = " ".join(block).strip(), []
        if not joined.startswith("ganbridge "):
            continue
        lexer = shlex.shlex(joined, posix=True)
        lexer.whitespace_split, lexer.commenters = True, ""  # '#' inside a word (#ffffff) is not a comment
        words = list(lexer)
        cut = next((i for i, w in enumerate(words) if w.startswith("#")), len(words))
        found.append((number, words[1:cut]))
    return found


def test_every_documented_command_parses():
    """Each `ganbridge ...` line in the docs is one the CLI accepts (parsed, not run). A synopsis
    with optional parts in [brackets] is not a command line and is left out."""
    parser = reference.build_cli_parser()
    wrong = []
    for page in markdown_pages():
        for number, argv in shell_commands(page.read_text(encoding="utf-8")):
            if any(w.startswith("[") for w in argv):
                continue
            try:
                parser.parse_args(argv)
            except SystemExit as e:  # --version and --help exit 0: accepted
                if e.code in (0, None):
                    continue
                wrong.append(f"{page.relative_to(ROOT).as_posix()}:{number}: ganbridge {shlex.join(argv)}")
    assert not wrong, "commands the CLI refuses:\n" + "\n".join(wrong)


# A repository path named in code font, e.g. `bridge/cluster/replica.py`; one with a placeholder
# part (`generators/weights/KIND/NAME.json`) names a pattern, not a file.
REPO_PATH = re.compile(r"`((?:bridge|generators|plugins|tests|scripts|docs|\.ci)/[^`\s]*)`")
PLACEHOLDERS = {"NAME", "KIND", "N", "OUT", "HOST", "MODEL"}


def names_a_pattern(path: str) -> bool:
    return bool(PLACEHOLDERS & set(re.split(r"[/_.-]", path)))


def test_every_repository_path_named_in_the_docs_exists():
    missing = []
    for page in markdown_pages():
        for number, line in prose_lines(page.read_text(encoding="utf-8")):
            for path in REPO_PATH.findall(line):
                if not names_a_pattern(path) and not (ROOT / path).exists():
                    missing.append(f"{page.relative_to(ROOT).as_posix()}:{number}: {path}")
    assert not missing, "files the docs name that do not exist:\n" + "\n".join(missing)


def test_every_error_code_is_documented():
    from ganbridge.core.protocol import ErrorCode

    page = (ROOT / "docs" / "reference" / "protocol.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", page, re.MULTILINE))
    missing = sorted(code.value for code in ErrorCode if code.value not in rows)
    assert not missing, f"docs/reference/protocol.md's error table lacks {missing}"


def test_every_osc_address_is_documented():
    spec = json.loads((ROOT / "plugins" / "daw" / "osc_map.json").read_text(encoding="utf-8"))
    page = (ROOT / "docs" / "reference" / "protocol.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(/ganbridge/[a-z_/]+)` \|", page, re.MULTILINE))
    missing = sorted(m["address"] for m in spec["to_bridge"] if m["address"] not in table)
    assert not missing, f"docs/reference/protocol.md's OSC address map lacks {missing}"


def test_the_readme_stays_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode("utf-8")) < 12_000, "README.md is over 12 KB: move detail into docs/"
    first_screen = "\n".join(readme.splitlines()[:20])
    for guide in ("docs/hosts/blender.md", "docs/hosts/krita.md", "docs/hosts/daws.md"):
        assert guide in first_screen, f"the README's first screen should link {guide}"
    assert "## Tests" in readme and "python -m pytest -q" in readme  # .ci/run runs the README's test command
