"""Every domain's tables in one place, for Alembic and for tests that build a schema."""

from __future__ import annotations

from sqlalchemy import MetaData

from reachout.agents import models as agents  # noqa: F401
from reachout.carriers.sandbox import models as sandbox  # noqa: F401
from reachout.compliance import models as compliance  # noqa: F401
from reachout.conversations import models as conversations  # noqa: F401
from reachout.db.base import Base
from reachout.events import models as events  # noqa: F401
from reachout.messaging import models as messaging  # noqa: F401
from reachout.phones import models as phones  # noqa: F401
from reachout.routing import models as routing  # noqa: F401
from reachout.tenancy import models as tenancy  # noqa: F401

metadata: MetaData = Base.metadata
