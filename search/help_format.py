"""How every ``gansearch`` parser formats its help: the top-level one (search/cli.py) and each
command's (search/commands/), which builds its parser with ``formatter_class=HelpFormatter``."""

from __future__ import annotations

import argparse
import re

_LITERAL = re.compile(r"``([^`]+)``")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Raw descriptions without docstring markup; a default is shown only when it says something
    the help text does not already say (not None, not a flag's False, not a second "default")."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(_LITERAL.sub(r"\1", text))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (action.default is None or action.default is False or action.default == argparse.SUPPRESS
                or "default" in text or "%(default)" in text or not action.option_strings):
            return text
        return super()._get_help_string(action)
