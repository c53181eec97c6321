"""Reading a provisioning file, with errors that name the file, the path inside it and what is wrong."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from reachout.provisioning.schema import MisplacedEntry, ProvisioningFile


class ProvisioningError(Exception):
    """A provisioning file that cannot be applied; the message lists every problem, one per line."""


def _path(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse(document: Any, source: str) -> ProvisioningFile:
    """Validate an already-parsed document."""
    try:
        return ProvisioningFile.model_validate(document if document is not None else {})
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            # Errors raised inside a validator carry a "Value error, " prefix that helps nobody.
            message = str(item["msg"]).removeprefix("Value error, ")
            location = tuple(item["loc"])
            cause = item.get("ctx", {}).get("error")
            if isinstance(cause, MisplacedEntry):
                location += cause.location  # the entry itself, not the model that noticed it
            problems.append(f"{source}: {_path(location)}: {message}")
        raise ProvisioningError("\n".join(problems)) from None


def load(path: Path) -> ProvisioningFile:
    """Read and validate a provisioning file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProvisioningError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ProvisioningError(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProvisioningError(f"{path}: not valid YAML: {describe_yaml_error(error, text)}") from None
    return parse(document, str(path))


# A key whose value is a credential, on the line itself or on the key a list item or continuation sits under.
_SECRET_KEY = re.compile(r"(token|secret|password|api_keys?|auth|credential)", re.IGNORECASE)
_KEY = re.compile(r"^\s*(?:-\s+)?([^\s:#][^:#]*?)\s*:(?:\s|$)")
REDACTED_LINE = "[this line holds a secret; not shown]"


def describe_yaml_error(error: yaml.YAMLError, text: str) -> str:
    """What YAML could not read, and where, without echoing a secret.

    PyYAML's own message quotes the offending line, which may hold an API key or an auth token: this shows the
    position, and the line only when neither it nor the key it sits under names a credential.
    """
    if isinstance(error, yaml.reader.ReaderError):
        # PyYAML places this one by an offset into "<unicode string>": count the lines to it. The line is not
        # shown: what is wrong with it is a character a terminal would not show either.
        before = text[: error.position]
        line, column = before.count("\n") + 1, error.position - before.rfind("\n")
        code = error.character if isinstance(error.character, int) else ord(error.character[:1] or b"\0")
        return f"unacceptable character #x{code:04x}: {error.reason} at line {line}, column {column}"
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return "the file is not a YAML document"
    mark = error.problem_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}"
    problem = " ".join(part for part in (error.context, error.problem) if part)
    started = error.context_mark
    if started is not None and started.line != mark.line:
        problem += f" (it started at line {started.line + 1}, column {started.column + 1})"
    lines = text.splitlines()
    if not 0 <= mark.line < len(lines):
        return f"{problem} at {where}"
    shown = REDACTED_LINE if _holds_secret(lines, mark.line) else lines[mark.line]
    return f"{problem} at {where}:\n    {shown}"


def _holds_secret(lines: list[str], index: int) -> bool:
    line = lines[index]
    if _SECRET_KEY.search(line):
        return True
    # A list item or a continuation belongs to the nearest key less indented than itself.
    indent = len(line) - len(line.lstrip())
    for above in reversed(lines[:index]):
        if not above.strip() or above.lstrip().startswith("#"):
            continue
        above_indent = len(above) - len(above.lstrip())
        if above_indent < indent or (above_indent == indent and not above.lstrip().startswith("-")):
            key = _KEY.match(above)
            if key is not None:
                return _SECRET_KEY.search(key.group(1)) is not None
            indent = min(indent, above_indent)
        if above_indent == 0:
            break
    return False
