"""The stylize and doctor command lines, their style options generated from StyleConfig's fields and metadata.

Defaults live in StyleConfig only: a flag not given on the command line keeps the field's default.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing

from .. import __version__
from ..config import BACKBONES, BACKEND_CHOICES, StyleConfig
from .display import PROG

PREVIEW_SUFFIX = ".preview.png"

# Flags whose shape differs from what the field's type alone would give.
_SPECIAL = {
    "preserve_colors": {"nargs": "?", "const": "luminance"},
    "init": {"metavar": "content|noise|FILE"},
}


class UsageError(Exception):
    """A bad command line (argparse's error), reported with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print and exit; main() decides how to report it
        raise UsageError(message)


def _config_fields() -> list:
    return [f for f in dataclasses.fields(StyleConfig) if f.metadata.get("cli", True)]


def flag_for(field: dataclasses.Field) -> str:
    """The command-line flag of a StyleConfig field: metadata's flag, or --field-name."""
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def config_flags() -> dict:
    """{StyleConfig field name: flag} for every field on the command line."""
    return {f.name: flag_for(f) for f in _config_fields()}


def _value_type(field: dataclasses.Field, hints: dict):
    """The Python type of one value of `field` (the element type for tuples), from its annotation and default."""
    hint = hints[field.name]
    if typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    origin = typing.get_origin(hint) or hint
    if origin is tuple:
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        if args:
            return args[0]
        default = field.default
        return type(default[0]) if isinstance(default, tuple) and default else float
    return origin


def _show_default(value) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def _add_config_option(group, field: dataclasses.Field, hints: dict) -> None:
    meta = field.metadata
    kind = _value_type(field, hints)
    help_text = (meta.get("help") or "").replace("%", "%%")
    kwargs = {"dest": field.name, "default": argparse.SUPPRESS}  # only flags given on the command line are set
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = kind
        if meta.get("nargs"):
            kwargs["nargs"] = meta["nargs"]
        if meta.get("choices"):
            kwargs["choices"] = tuple(meta["choices"])
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
    kwargs.update(_SPECIAL.get(field.name, {}))
    if field.name == "preserve_colors":
        kwargs["metavar"] = "|".join(meta["choices"])
        help_text += " (default: off; the flag alone means luminance)"
    elif field.default is not None and field.default != ():  # () : a default the help text describes
        help_text += f" (default: {_show_default(field.default)})"
    group.add_argument(flag_for(field), help=help_text, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the stylize command, its style options generated from StyleConfig."""
    parser = _Parser(
        prog=PROG,
        usage="%(prog)s CONTENT STYLE [STYLE ...] -o OUT [options]\n       %(prog)s doctor [--json] [--backbone B] "
        "[--weights FILE]",
        description="Paint CONTENT in the style of one or more STYLE images (Gatys et al. neural style transfer).",
        epilog=f"'{PROG} doctor' checks the installation and the network weights (exit 0 when ready). "
        "Stopping: SIGINT or SIGTERM stop the run, and the end of stdin with --stop-on-eof (or with --json when stdin "
        "is a pipe); without --keep-partial a SIGTERM ends it within about 2 s, even in the middle of a step. "
        "Exit codes: 0 done, 1 error in the input or settings, 2 bad command line, 3 unexpected error, 130 stopped.",
        allow_abbrev=False,
    )
    parser.add_argument("content", metavar="CONTENT", help="the photo to repaint")
    parser.add_argument("styles", metavar="STYLE", nargs="+", help="one or more images whose style is applied")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the result (.png, ...)")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")

    run = parser.add_argument_group("output and reporting")
    run.add_argument("--json", action="store_true", help="machine-readable JSON events on stdout (for programs)")
    run.add_argument("--keep-partial", action="store_true", help="when stopped, write the best result so far to OUT")
    run.add_argument(
        "--bit-depth",
        type=int,
        choices=(8, 16),
        default=None,
        help="bits per channel of OUT (default: 16 when the content is 16-bit and OUT is .png or .tif, else 8)",
    )
    run.add_argument("--preview-every", type=int, default=None, metavar="N", help="write a preview image every N steps")
    run.add_argument(
        "--preview-path",
        default=None,
        metavar="FILE",
        help=f"where the preview goes (default: OUT's name + '{PREVIEW_SUFFIX}' in OUT's folder; removed at the end)",
    )
    run.add_argument(
        "--preview-dir",
        default=None,
        metavar="DIR",
        help="write each preview as a new file DIR/preview-0001.png, preview-0002.png, ... (written atomically, "
        "announced after the rename, never deleted by nst-keras: the reader deletes them); instead of --preview-path",
    )
    run.add_argument(
        "--stop-on-eof",
        action="store_true",
        help="stop when stdin is closed. Without it, the end of stdin stops a run only with --json on a pipe; "
        "a script with no stdin (</dev/null, cron, a service) is never stopped by it",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors")

    style = parser.add_argument_group("style transfer settings")
    hints = typing.get_type_hints(StyleConfig)
    for field in _config_fields():
        _add_config_option(style, field, hints)
    return parser


def build_doctor_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} doctor",
        description="Report versions, the compute device and whether the network weights are available "
        "(exit 0 when they are, 1 when not).",
        allow_abbrev=False,
    )
    default = StyleConfig()
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--backbone", choices=BACKBONES, default=default.backbone, help=f"(default: {default.backbone})"
    )
    parser.add_argument("--weights", metavar="FILE", default=None, help="a weights file to check")
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default=default.backend,
        help=f"the Keras backend to report on (default: {default.backend})",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    """StyleConfig's defaults, replaced by the options given on the command line (not yet validated)."""
    names = {f.name for f in dataclasses.fields(StyleConfig)}
    given = {k: (tuple(v) if isinstance(v, list) else v) for k, v in vars(args).items() if k in names}
    return dataclasses.replace(StyleConfig(), **given)


def flag_message(message: str) -> str:
    """Name settings as the command line spells them: 'style_weight: ...' -> '--style-weight: ...'."""
    flags = config_flags()
    head, sep, rest = message.partition(":")
    if sep and head in flags:
        message = flags[head] + sep + rest
    return re.sub(r"\b[a-z]+(?:_[a-z]+)+\b", lambda m: flags.get(m.group(0), m.group(0)), message)
