"""loans schedule, outbox, reminders

Instalments (a loan's schedule), the repayment -> instalment link, loan interest, the
outbox of decision-relevant changes, the scheduler's watermark and reminder preferences.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 15:37:27.408988
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('published_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_outbox_key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_published_at'), ['published_at'], unique=False)

    op.create_table('scheduler_state',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('watermark', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('reminder_preferences',
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('days_before', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('borrower_id')
    )
    op.create_table('instalments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.DateTime(), nullable=False),
    sa.Column('principal_cents', sa.Integer(), nullable=False),
    sa.Column('interest_cents', sa.Integer(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('loan_id', 'number', name='uq_instalments_loan_number')
    )
    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instalments_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_instalments_loan_id'), ['loan_id'], unique=False)

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('interest_cents', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('instalment_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_repayments_instalment_id', 'instalments', ['instalment_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_repayments_instalment_id', type_='foreignkey')
        batch_op.drop_column('instalment_id')

    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_column('interest_cents')

    with op.batch_alter_table('instalments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instalments_loan_id'))
        batch_op.drop_index(batch_op.f('ix_instalments_borrower_id'))

    op.drop_table('instalments')
    op.drop_table('reminder_preferences')
    op.drop_table('scheduler_state')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_published_at'))
        batch_op.drop_index(batch_op.f('ix_outbox_borrower_id'))

    op.drop_table('outbox')
