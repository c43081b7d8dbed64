"""Every `tradertape ...` command the guides and the README name exists, with the options they give it."""

from __future__ import annotations

import argparse
import re

from api.cli import build_parser
from tests.docs.guides import ROOT, guides

_COMMAND = re.compile(r"tradertape((?: +(?:[a-z][a-z-]*|--[a-z][a-z-]*))+)")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def test_every_named_command_and_option_exists() -> None:
    root = build_parser()
    wrong = []
    for doc in [ROOT / "README.md", *guides()]:
        for words in _COMMAND.findall(doc.read_text(encoding="utf-8")):
            parser, path = root, ["tradertape"]
            for word in words.split():
                subs = _subcommands(parser)
                if word.startswith("--"):
                    if word not in _options(parser):
                        wrong.append(f"{doc.name}: `{' '.join(path)} {word}`: no such option")
                    continue
                if not subs:
                    break  # an argument (a file, an email), not a command
                if word not in subs:
                    wrong.append(f"{doc.name}: `{' '.join(path)} {word}`: no such command")
                    break
                parser = subs[word]
                path.append(word)
    assert not wrong, "\n".join(sorted(set(wrong)))
