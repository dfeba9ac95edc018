"""The shipped migrations are the models, with one head, and `portal init` is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from portal.database import make_engine
from portal.migrate import current_revision, head_revisions, upgrade
from portal.models import Base


def test_there_is_exactly_one_head() -> None:
    assert len(head_revisions()) == 1


def test_migrations_produce_exactly_the_models(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        before, after = upgrade(engine)
        assert before is None
        assert after == head_revisions()[0]
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_twice_changes_nothing(fresh_databases) -> None:
    engine = make_engine(fresh_databases.new_url())
    try:
        upgrade(engine)
        before, after = upgrade(engine)
        assert before == after == current_revision(engine) == head_revisions()[0]
    finally:
        engine.dispose()
