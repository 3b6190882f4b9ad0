"""The README and docs/ show the shipped files, name every command and option, and link to what exists."""

import argparse
import ast
import re
import shutil
from dataclasses import replace

from conftest import ROOT

from nas.cli import build_parser
from nas.config import load_budget
from nas.study import load_study

README = (ROOT / "README.md").read_text()
DOCS = {path: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {ROOT / "README.md": README, **DOCS}
README_MAX_LINES = 250


def included(marker: str, text: str = README, where: str = "README.md") -> tuple[str, str]:
    """(path, text) of the code block after `<!-- marker: path -->`."""
    found = re.search(rf"<!-- {marker}: (\S+) -->\n```toml\n(.*?)```\n", text, re.S)
    assert found, f"no <!-- {marker}: FILE --> block in {where}"
    return found.group(1), found.group(2)


def test_readme_teaches_in_at_most_250_lines():
    assert len(README.splitlines()) <= README_MAX_LINES


def test_readme_budget_is_the_shipped_headline_budget(tmp_path):
    path, text = included("budget")
    assert path == "budgets/mnist_20k.toml"
    assert text == (ROOT / path).read_text()
    shutil.copytree(ROOT / "budgets" / "archs", tmp_path / "archs")  # its baseline is relative to the budget
    (tmp_path / "readme.toml").write_text(text)
    shipped = load_budget(ROOT / path)
    assert load_budget(tmp_path / "readme.toml") == replace(shipped, path=str(tmp_path / "readme.toml"))
    assert shipped.search.baseline is None  # opt in (commented out): it would outlast the confirmation


def test_the_studies_page_shows_the_shipped_study_file():
    path, text = included("study", DOCS[ROOT / "docs" / "studies.md"], "docs/studies.md")
    assert text == (ROOT / path).read_text()
    assert load_study(ROOT / path).name == "mnist_dropout_bn"


def _commands_block() -> str:
    return README.split("## Commands\n", 1)[1].split("```", 2)[1]


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "nas"):
    """(command path, its parser) for every subcommand, nested ones too (`nas data fetch`)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
                yield from _subcommands(sub, f"{prefix} {name}")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")]


def test_readme_lists_every_command_with_every_option():
    block = _commands_block()
    missing = []
    for command, p in _subcommands(build_parser()):
        if command.count(" ") > 1:
            continue  # `nas data fetch` sits on `nas data`'s line
        name = command.split(" ", 1)[1]
        lines = [line for line in block.splitlines() if re.match(rf"nas {name}\b", line.strip())]
        if not lines:
            missing.append(command)
            continue
        start = block.index(lines[0])
        # a command's entry runs to the next line starting with "nas "
        rest = block[start:].split("\nnas ", 1)[0]
        missing += [f"{command} {option}" for option in _options(p) if option not in rest]
    assert "--debug" in block
    assert not missing, missing


def _passages(pages: dict) -> list[str]:
    """Paragraphs of every page, code blocks cut further at each line that starts a `nas` command, so
    that an option counts only beside the command it belongs to."""
    out = []
    for text in pages.values():
        for paragraph in re.split(r"\n\s*\n", text):
            out += re.split(r"\n(?=\s*nas )", paragraph)
    return out


def undocumented(parser: argparse.ArgumentParser, pages: dict) -> list[str]:
    """Each command path, and each `command option`, that no passage of `pages` names together."""
    passages = _passages(pages)

    def named(command: str, option: str | None = None) -> bool:
        said = re.compile(r"\b" + r"\s+".join(map(re.escape, command.split(" "))) + r"\b")
        flag = re.compile(rf"(?<![\w-]){re.escape(option)}(?![\w-])") if option else None
        return any(said.search(p) and (flag is None or flag.search(p)) for p in passages)

    missing = [f"nas {o}" for o in _options(parser) if not named("nas", o)]
    for command, sub in _subcommands(parser):
        if not named(command):
            missing.append(command)
        missing += [f"{command} {o}" for o in _options(sub) if not named(command, o)]
    return missing


def test_every_command_and_option_is_documented_somewhere():
    """Walks the parser, so an option added later fails here until a page names it beside its command."""
    assert not undocumented(build_parser(), PAGES)


def test_the_option_walk_catches_an_undocumented_option_and_command():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["export"].add_argument("--planted-option")
    sub.add_parser("planted")
    assert undocumented(parser, PAGES) == ["nas export --planted-option", "nas planted"]
    # an option named only beside another command does not count for this one
    assert "nas runs --format" in undocumented(_with_option("runs", "--format"), PAGES)


def _with_option(command: str, option: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices[command].add_argument(option)
    return parser


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_resolves_to_a_file_and_heading():
    broken = []
    for page, text in PAGES.items():
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and file.suffix == ".md":
                headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
                if anchor not in headings:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_architecture_page_draws_the_layering_tests_table():
    source = (ROOT / "tests" / "architecture" / "test_layers.py").read_text()
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign) and n.targets[0].id == "LAYERS")
    layers = ast.literal_eval(node.value)
    table = DOCS[ROOT / "docs" / "architecture.md"].split("<!-- layers -->", 1)[1].split("\n\n", 1)[0]
    drawn = {m: int(n) for n, m in re.findall(r"^\| (\d+) \| `([\w.]+)` \|", table, re.M)}
    assert drawn == layers
