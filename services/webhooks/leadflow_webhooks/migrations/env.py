from leadflow_shared.migrations import run_alembic_env
from leadflow_webhooks.models import Base

run_alembic_env(Base.metadata)
