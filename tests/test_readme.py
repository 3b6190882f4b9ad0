"""The README's examples are the shipped files, and its command list names every command and option."""

import re
import shutil
from dataclasses import replace

from conftest import ROOT

from nas.cli import build_parser
from nas.config import load_budget
from nas.study import load_study

README = (ROOT / "README.md").read_text()


def included(marker: str) -> tuple[str, str]:
    """(path, text) of the code block after `<!-- marker: path -->`."""
    found = re.search(rf"<!-- {marker}: (\S+) -->\n```toml\n(.*?)```\n", README, re.S)
    assert found, f"no <!-- {marker}: FILE --> block in README.md"
    return found.group(1), found.group(2)


def test_readme_budget_is_the_shipped_headline_budget(tmp_path):
    path, text = included("budget")
    assert path == "budgets/mnist_20k.toml"
    assert text == (ROOT / path).read_text()
    shutil.copytree(ROOT / "budgets" / "archs", tmp_path / "archs")  # its baseline is relative to the budget
    (tmp_path / "readme.toml").write_text(text)
    shipped = load_budget(ROOT / path)
    assert load_budget(tmp_path / "readme.toml") == replace(shipped, path=str(tmp_path / "readme.toml"))
    assert shipped.search.baseline is None  # opt in (commented out): it would outlast the confirmation


def test_readme_study_file_is_the_shipped_one():
    path, text = included("study")
    assert text == (ROOT / path).read_text()
    assert load_study(ROOT / path).name == "mnist_dropout_bn"


def _commands_block() -> str:
    return README.split("## Commands\n", 1)[1].split("```", 2)[1]


def test_readme_lists_every_command_with_every_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    block = _commands_block()
    missing = []
    for name, p in sub.choices.items():
        lines = [line for line in block.splitlines() if re.match(rf"nas {name}\b", line.strip())]
        if not lines:
            missing.append(f"nas {name}")
            continue
        start = block.index(lines[0])
        # a command's entry runs to the next line starting with "nas "
        rest = block[start:].split("\nnas ", 1)[0]
        for action in p._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help") and option not in rest:
                    missing.append(f"nas {name} {option}")
    assert "--debug" in block
    assert not missing, missing
