"""messages: a bot reply's attachment (a picture of the borrower's situation)

The assistant may send, next to a reply's text, a picture of the borrower's situation (the
window they are waiting out, the limit in use): ``common/situation.py``. The desk keeps it
with the reply, validated, so the chat page draws it live and again on replay. Null for every
other message and for replies stored before this revision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attachment', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('attachment')
