from leadflow_console.models import Base
from leadflow_shared.migrations import run_alembic_env

run_alembic_env(Base.metadata)
