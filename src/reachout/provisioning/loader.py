"""Reading a provisioning file, with errors that name the file, the path inside it and what is wrong."""

from __future__ import annotations

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
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ProvisioningError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ProvisioningError(f"{path}: not valid YAML: {error}") from None
    return parse(document, str(path))
