"""The argument parser of an ``openspine train …`` or ``openspine evaluate …`` command."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's line breaks (the examples) and shows each option's default: once (not where the help
    already says its default) and only a real one (not None, nor a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text.lower() or any(action.default is d for d in (None, False, argparse.SUPPRESS)):
            return action.help
        return super()._get_help_string(action)


def command_parser(prog: str, description: str, epilog: str, show_defaults: bool = True) -> argparse.ArgumentParser:
    """An empty parser for the sub-command ``prog``, with its description and examples (and each option's default
    in ``--help`` unless ``show_defaults`` is false)."""
    formatter = HelpFormatter if show_defaults else argparse.RawDescriptionHelpFormatter
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=formatter, epilog=epilog)
