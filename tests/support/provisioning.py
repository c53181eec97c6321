"""A provisioning document most tests start from."""

from __future__ import annotations

from typing import Any

API_KEY = "rk_test_acme_000001"
OTHER_API_KEY = "rk_test_other_00002"
CONNECTOR = "conn_clinic"
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
