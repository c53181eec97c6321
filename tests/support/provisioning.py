"""A provisioning document most tests start from."""

from __future__ import annotations

from typing import Any

API_KEY = "rk_test_acme_000001"
OTHER_API_KEY = "rk_test_other_00002"
CONNECTOR = "conn_clinic"
# The PolyAI dialect's headers; the content type is for bodies posted raw (httpx's `json=` sends the same).
POLYAI_HEADERS = {"X-PolyAi-Auth-Token": API_KEY, "X-TOKEN-ID": CONNECTOR, "Content-Type": "application/json"}
OTHER_CONNECTOR = "conn_other"
EMPTY_CONNECTOR = "conn_empty"
SENDER = "+14155550100"
SECOND_SENDER = "+14155550101"
PRE_RELEASE_SENDER = "+14155550199"
USER = "+14155551234"


def standard_document(*, rate_limit: int = 1000) -> dict[str, Any]:
    return {
        "accounts": [
            {
                "id": "acme",
                "api_keys": [API_KEY],
                "projects": [
                    {
                        "id": "clinic",
                        "connector_id": CONNECTOR,
                        "environment": "live",
                        "rate_limit": {"requests": rate_limit, "per_seconds": 60},
                        "numbers": [
                            {"number": SENDER, "carrier": "sandbox", "capabilities": ["sms", "voice"]},
                            {"number": SECOND_SENDER, "carrier": "sandbox", "capabilities": ["sms"]},
                            {"number": PRE_RELEASE_SENDER, "environment": "pre-release"},
                        ],
                    },
                    {"id": "empty", "connector_id": EMPTY_CONNECTOR, "numbers": []},
                ],
            },
            {
                "id": "other",
                "api_keys": [OTHER_API_KEY],
                "projects": [
                    {
                        "id": "other-project",
                        "connector_id": OTHER_CONNECTOR,
                        "numbers": [{"number": "+14155550150"}],
                    }
                ],
            },
        ]
    }


# An SMS use case (the Amigo dialect), its pool in San Francisco (415) and New York (212, its overlay 646).
USE_CASE = "3f6c2a3e-5b0e-4a8e-9d3c-0f1e2d3c4b5a"
OTHER_USE_CASE = "9a1d7c42-1111-4c4c-8888-0123456789ab"
POOL_415 = "+14155550110"
POOL_212 = "+12125550110"
POOL_646 = "+16465550110"
POOL = [POOL_415, POOL_212, POOL_646]


def use_case_document(
    *, use_case: dict[str, Any] | None = None, project: dict[str, Any] | None = None, carrier: str = "sandbox"
) -> dict[str, Any]:
    """The standard document plus a project `outreach` with one use case over POOL (changes merged in)."""
    document = standard_document()
    [acme, other] = document["accounts"]
    acme["projects"].append(
        {
            "id": "outreach",
            "numbers": [{"number": n, "carrier": carrier, "capabilities": ["sms"]} for n in POOL],
            "use_cases": [
                {
                    "id": USE_CASE,
                    "name": "reminders",
                    "sender_pool": list(POOL),
                    "campaign": "verified",
                    "allowed_countries": ["US", "CA"],
                }
                | (use_case or {})
            ],
        }
        | (project or {})
    )
    other["projects"][0]["use_cases"] = [
        {"id": OTHER_USE_CASE, "name": "theirs", "sender_pool": ["+14155550150"], "campaign": "verified"}
    ]
    return document
