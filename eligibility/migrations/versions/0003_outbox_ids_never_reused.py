"""outbox ids never reused

SQLite gives the highest rowid out again once its row is deleted (a reseeded sandbox deletes
the demo's outbox rows), and a consumer's cursor on ``id`` would then skip the change under
it. ``AUTOINCREMENT`` makes SQLite remember the highest id ever given out (sqlite_sequence).
SQLite cannot alter a table's key in place: the table is rebuilt (batch mode), rows, ids,
the unique key and the indexes kept; copying the rows sets the sequence to the highest id
still there. PostgreSQL's ids come from a sequence that never goes back: nothing to do.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 19:10:00
"""

from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table('outbox', recreate='always',
                              table_kwargs={'sqlite_autoincrement': autoincrement}):
        pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
