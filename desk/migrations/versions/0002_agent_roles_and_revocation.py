"""agents: a role (agent | supervisor) and a token version that logout bumps

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 09:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=12), nullable=False,
                                      server_default='agent'))
        batch_op.add_column(sa.Column('token_version', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('active', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        # when the raw text was replaced by its masked form (retention); null: still raw
        batch_op.add_column(sa.Column('masked_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('masked_at')
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('active')
        batch_op.drop_column('token_version')
        batch_op.drop_column('role')
