"""notices: the changes a borrower was waiting for, once per change key

The notifier (``notices/``) hands the desk each change of the backend's outbox (a repayment
posted, a hold released, ...); the desk stores it here under its unique ``key`` in the same
transaction that stores the chat message it became, so a change redelivered by the broker or
replayed after a restart of the notifier finds its key and becomes no second message
(desk/notices.py). A notice waits here while the borrower has no conversation yet or quiet
hours hold it. ``messages.notice`` marks the bot's message a notice became (the kind of
change), so the app can show it as a notice.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notices',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=True),
        sa.Column('borrower_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=True),
        sa.Column('decision', sa.JSON(), nullable=True),
        sa.Column('occurred_at', sa.DateTime(), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('deliver_after', sa.DateTime(), nullable=True),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('state_at', sa.DateTime(), nullable=False),
        sa.Column('conversation_id', sa.String(length=40), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id']),
        sa.ForeignKeyConstraint(['message_id'], ['messages.id']),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notices_outbox_id'), ['outbox_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_borrower_id'), ['borrower_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_notices_state'), ['state'], unique=False)
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('notice')
    op.drop_table('notices')
