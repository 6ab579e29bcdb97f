"""one conversation per borrower, one open case per conversation, the turn lease

Several desk processes share one database: the database, not a check in the code, must keep
a borrower to one conversation and a conversation to one open case (two sockets, or two
desks, at once could otherwise create two). And a conversation's turns run one at a time
across desks: ``conversations.turn_owner`` / ``turn_lease_until`` is the lease the running
desk holds and renews (desk/turns.py).

Rows from before this revision that break the new rules are mended first:
- a borrower's several conversations become one: the newest (the one the desk was using,
  ``open_conversation`` picked it) keeps its id; the others' messages and cases move into it
  (a message whose client id the kept conversation already has loses its client id; message
  ids, the replay order, stay as they were) and they are deleted. It is agent-owned if any
  of them was.
- of a conversation's several open cases, one stays open (a claimed one before a waiting
  one, then the oldest); the others are closed with a note saying why.

The downgrade drops the lease and the two unique indexes (the mended rows stay mended).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 16:00:00
"""

from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN = "status IN ('waiting', 'claimed')"
MERGED_NOTE = "closed by migration 0005: another case of this conversation stayed open"


def _merge_conversations(bind: sa.engine.Connection) -> None:
    duplicated = bind.execute(sa.text(
        "SELECT borrower_id FROM conversations GROUP BY borrower_id HAVING COUNT(*) > 1"
    )).scalars().all()
    for borrower_id in duplicated:
        rows = bind.execute(sa.text(
            "SELECT id, owner FROM conversations WHERE borrower_id = :b"
            " ORDER BY created_at DESC, id DESC"), {"b": borrower_id}).all()
        keep, others = rows[0].id, [r.id for r in rows[1:]]
        agent_owned = any(r.owner == "agent" for r in rows)
        for other in others:
            # a client id the kept conversation already has would break uq_messages_client_id
            bind.execute(sa.text(
                "UPDATE messages SET client_message_id = NULL WHERE conversation_id = :o"
                " AND client_message_id IN (SELECT client_message_id FROM messages"
                " WHERE conversation_id = :k AND client_message_id IS NOT NULL)"),
                {"o": other, "k": keep})
            bind.execute(sa.text("UPDATE messages SET conversation_id = :k"
                                 " WHERE conversation_id = :o"), {"o": other, "k": keep})
            bind.execute(sa.text("UPDATE cases SET conversation_id = :k"
                                 " WHERE conversation_id = :o"), {"o": other, "k": keep})
            bind.execute(sa.text("DELETE FROM conversations WHERE id = :o"), {"o": other})
        if agent_owned:
            bind.execute(sa.text("UPDATE conversations SET owner = 'agent' WHERE id = :k"),
                         {"k": keep})


def _close_extra_open_cases(bind: sa.engine.Connection) -> None:
    now = datetime.now(timezone.utc).replace(tzinfo=None)  # stored naive UTC
    duplicated = bind.execute(sa.text(
        f"SELECT conversation_id FROM cases WHERE {OPEN} GROUP BY conversation_id"
        " HAVING COUNT(*) > 1")).scalars().all()
    for conversation_id in duplicated:
        ids = bind.execute(sa.text(
            f"SELECT id FROM cases WHERE conversation_id = :c AND {OPEN}"
            " ORDER BY CASE WHEN status = 'claimed' THEN 0 ELSE 1 END, created_at, id"),
            {"c": conversation_id}).scalars().all()
        for case_id in ids[1:]:
            bind.execute(sa.text(
                "UPDATE cases SET status = 'closed', ended_at = :now, return_note = :note"
                " WHERE id = :id"), {"now": now, "note": MERGED_NOTE, "id": case_id})


def upgrade() -> None:
    bind = op.get_bind()
    _merge_conversations(bind)
    _close_extra_open_cases(bind)
    # plain ALTER TABLE / CREATE INDEX, no batch: on SQLite a batch would copy and drop the
    # conversations table, which its messages' foreign keys refuse
    op.add_column('conversations', sa.Column('turn_owner', sa.String(length=40), nullable=True))
    op.add_column('conversations', sa.Column('turn_lease_until', sa.DateTime(), nullable=True))
    op.drop_index('ix_conversations_borrower_id', table_name='conversations')
    op.create_index('ix_conversations_borrower_id', 'conversations', ['borrower_id'],
                    unique=True)
    op.create_index('uq_cases_open_conversation', 'cases', ['conversation_id'], unique=True,
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index('uq_cases_open_conversation', table_name='cases')
    op.drop_index('ix_conversations_borrower_id', table_name='conversations')
    op.create_index('ix_conversations_borrower_id', 'conversations', ['borrower_id'],
                    unique=False)
    op.drop_column('conversations', 'turn_lease_until')  # SQLite 3.35+: ALTER TABLE DROP COLUMN
    op.drop_column('conversations', 'turn_owner')
