"""Every dialect's error table covers every `ErrorCode`, so an unmapped code fails here, not as a KeyError
(a 500) when a route first raises it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pytest
from fastapi.responses import JSONResponse

from reachout.dialects import amigo, bland, polyai
from reachout.errors import ErrorCode, ReachoutError

MESSAGE = "The reason, in words."


@dataclass(frozen=True)
class Dialect:
    """One dialect's table, its renderer, the refusal statuses its platform uses and its refusal body."""

    table: Mapping[ErrorCode, int]
    render: Callable[[ReachoutError], JSONResponse]
    refusal_statuses: frozenset[int]
    body: Callable[[ErrorCode], object]


def detail(code: ErrorCode) -> object:
    return {"detail": MESSAGE}


def envelope(code: ErrorCode) -> object:
    return {"data": None, "errors": [{"error": code.value, "message": MESSAGE}]}


DIALECTS = {
    "polyai": Dialect(polyai.STATUS_FOR, polyai.error_response, frozenset({400, 401, 403, 404, 429}), detail),
    "amigo": Dialect(amigo.STATUS_FOR, amigo.error_response, frozenset({400, 401, 404, 422, 429}), detail),
    "bland": Dialect(bland.STATUS_FOR, bland.error_response, frozenset({400, 401, 403, 404, 429}), envelope),
}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_table_names_every_code(dialect: str) -> None:
    assert set(ErrorCode) - set(DIALECTS[dialect].table) == set()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
def test_every_code_renders_in_the_dialects_shape(dialect: str, code: ErrorCode) -> None:
    spoken = DIALECTS[dialect]
    response = spoken.render(ReachoutError(code, MESSAGE))
    assert response.status_code == spoken.table[code]
    if code is ErrorCode.INTERNAL_ERROR:
        assert response.status_code == 500
    else:
        assert response.status_code in spoken.refusal_statuses
    assert response.headers["content-type"] == "application/json"
    assert json.loads(bytes(response.body)) == spoken.body(code)
