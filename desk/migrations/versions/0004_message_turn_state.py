"""messages: the state of a borrower message's turn (an outbox)

A borrower message is stored and acknowledged before the assistant sees it. ``state`` says
how far its turn got: pending -> sending -> done, or failed (the assistant did not answer).
A desk that stops between the ack and the end of the turn leaves the message pending or
sending, and the desk picks it up again (desk/turns.py), so no acknowledged message is lost.
``state_at`` is when the state last changed, ``forwarded_at`` when the desk first forwarded
it to the assistant (where to look for it in Rasa's tracker after a crash).

Messages stored before this revision keep a null state: their turns ran (or were lost)
under the old code and are never replayed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 14:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('state_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('forwarded_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_messages_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_state'))
        batch_op.drop_column('forwarded_at')
        batch_op.drop_column('state_at')
        batch_op.drop_column('state')
