"""The argument parser of an ``openspine train …`` or ``openspine evaluate …`` command."""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the epilog's line breaks (the examples) and shows each option's default."""


def command_parser(prog: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """An empty parser for the sub-command ``prog``, with its description and examples."""
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter, epilog=epilog)
