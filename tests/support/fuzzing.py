"""Schemathesis against a real reachout: a `reachout serve` process on 127.0.0.1 with its own provisioning
file and database, the OpenAPI document it serves, loaded with a configuration of the test's own (no
`schemathesis.toml` is discovered from the working directory), and hostile values mixed into the cases.

    @pytest.fixture
    def api(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BaseSchema]:
        lazy_schema_on_this_pytest(request)
        with running_server(database_url, tmp_path) as server:
            yield served_schema(server.base_url, credentials={"BlandApiKey": {"api_key": API_KEY}})

    schema = schemathesis.pytest.from_fixture("api").include(tag="Bland")   # filter the lazy schema

    @schema.parametrize()
    def test_api(case: schemathesis.Case) -> None:
        call_and_validate(case)   # CHECKS, and any `additional_checks=[...]`
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml

from tests.support import processes
from tests.support.provisioning import standard_document

# "Not a server error", and that each answer's status, media type, headers and body are ones the document
# declares.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]

# Values that have broken servers before, mixed into every generated string and integer parameter (query,
# header, cookie, path) at `HOSTILE_PROBABILITY`: a NUL (PostgreSQL's text cannot hold one), LIKE's
# wildcards and escape, a quote, a right-to-left override, astral text, the edges of 32- and 64-bit
# integers. Each is drawn only where the schema admits it (positive cases) or refuses it (negative cases);
# schemathesis never puts a NUL, `/`, `.` or `..` into a path parameter: each route's own tests try those.
HOSTILE_VALUES: list[str | int] = [
    "\x00",
    "+1415555\x00",
    "%",
    "_",
    "\\",
    "'",
    "\u202e",
    "\U0001f642",
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    368934881474191034,
]
HOSTILE_PROBABILITY = 0.2
# Answered by the HTTP server before any route (reachout.kit.server): request line and headers too long.
BEFORE_ANY_ROUTE = {431}


@contextmanager
def running_server(
    database_url: str,
    directory: Path,
    document: dict[str, Any] | None = None,
    *,
    worker: bool = False,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[processes.ReachoutProcess]:
    """`reachout serve` on a free port of 127.0.0.1, provisioned with `document` (the standard one by
    default); its log is `directory/api.log`. Stopped when the block ends."""
    config = directory / "reachout.yaml"
    config.write_text(yaml.safe_dump(document if document is not None else standard_document()))
    server = processes.server(database_url, config, directory, worker=worker, extra_env=extra_env)
    try:
        yield server.start()
    finally:
        server.stop()


def served_schema(
    base_url: str,
    *,
    credentials: Mapping[str, Mapping[str, str]] | None = None,
    max_examples: int = 150,
    max_examples_for: Mapping[str, int] | None = None,
    phases: Sequence[str] = ("examples", "coverage", "fuzzing"),
    checks: Sequence[str] = tuple(CHECKS),
    known: Mapping[str, Sequence[str | int]] | None = None,
) -> schemathesis.BaseSchema:
    """The server's `/openapi.json` as schemathesis tests it: every request to `base_url`, `HOSTILE_VALUES`
    mixed in, at most `max_examples` generated cases per operation in the fuzzing phase (`max_examples_for`
    by label: `{"GET /path": 60}`), derandomized (a failure found once is found again), judged by `checks`.

    `credentials` are the values of the document's security schemes, by scheme name (`{"AmigoBearer":
    {"bearer": KEY}, "BlandApiKey": {"api_key": KEY}}`): each operation sends those its `security` names.
    `known` names values that exist (`{"path.conversation_id": [ids]}`): half of that parameter's cases draw
    from them and from the hostile text (a parameter's own binding replaces the one for its type), so that
    lookups find something too."""
    hostile = {"dictionary": "hostile", "probability": HOSTILE_PROBABILITY}
    dictionaries: dict[str, Any] = {"hostile": {"values": HOSTILE_VALUES}}
    parameters: dict[str, Any] = {}
    hostile_text = [v for v in HOSTILE_VALUES if isinstance(v, str)]
    for n, (parameter, values) in enumerate(sorted((known or {}).items())):
        dictionaries[f"known{n}"] = {"values": [*values, *hostile_text]}
        parameters[parameter] = {"dictionary": f"known{n}", "probability": 0.5}
    settings: dict[str, Any] = {
        "dictionaries": dictionaries,
        "parameters": parameters,
        "generation": {"dictionaries": {"string": hostile, "integer": hostile}},
        "operations": [
            {"include-name": label, "generation": {"max-examples": count}}
            for label, count in sorted((max_examples_for or {}).items())
        ],
    }
    if credentials:
        # No sign-up: the document has no such operation, and its credentials are all given.
        settings["auth"] = {"openapi": {k: dict(v) for k, v in credentials.items()}, "auto-signup": False}
    config = schemathesis.Config.from_dict(settings)
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    schema.config.update(base_url=base_url)
    schema.config.generation.update(max_examples=max_examples, deterministic=True, database="none")
    schema.config.phases.update(phases=list(phases))
    schema.config.checks.update(included_check_names=list(checks))
    return schema


def operations(schema: schemathesis.BaseSchema) -> set[str]:
    """The labels (`GET /path`) of the operations `schema` would test."""
    return {result.ok().label for result in schema.get_all_operations()}


def call_and_validate(
    case: schemathesis.Case,
    additional_checks: Sequence[Callable[..., object]] = (),
    headers: Mapping[str, str] | None = None,
) -> schemathesis.Response:
    """Send `case`, with `headers` too, and run the configured checks and `additional_checks` on the answer,
    unless the HTTP server answered before any route (`BEFORE_ANY_ROUTE`): its answer, not the operation's."""
    response = case.call(headers=dict(headers or {}))
    if response.status_code not in BEFORE_ANY_ROUTE:
        case.validate_response(response, additional_checks=list(additional_checks))
    return response


def lazy_schema_on_this_pytest(request: pytest.FixtureRequest) -> None:
    """Call first in the fixture behind `schemathesis.pytest.from_fixture`: schemathesis 4.32 reads and writes
    `request.node._nodeid`, which pytest 9.2 no longer has (it keeps `nodeid` elsewhere); without it the test
    fails with an AttributeError before generating anything. Harmless where the attribute exists."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
