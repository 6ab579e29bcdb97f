"""conversations: drop status, which nothing ever set but to 'open'

A borrower has one conversation that goes on across reconnects, handoffs and closed cases
(closing a case hands the conversation back to the bot), so there is nothing for a
conversation status to say.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ALTER TABLE DROP COLUMN (SQLite 3.35+), no batch: on SQLite a batch copies and
    # drops the conversations table, which its messages' foreign keys refuse
    op.drop_column('conversations', 'status')


def downgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=10), nullable=False,
                                      server_default='open'))
