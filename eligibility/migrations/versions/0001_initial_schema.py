"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 10:20:22.137123
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('borrowers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('locale', sa.String(length=10), nullable=False),
    sa.Column('timezone', sa.String(length=40), nullable=False),
    sa.Column('segment', sa.String(length=40), nullable=False),
    sa.Column('funding_partner', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_drawdown_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('funding_quota_windows',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('funding_partner', sa.String(length=40), nullable=False),
    sa.Column('exhausted_at', sa.DateTime(), nullable=False),
    sa.Column('reopens_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('funding_quota_windows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_funding_quota_windows_funding_partner'), ['funding_partner'], unique=False)

    op.create_table('incidents',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('funding_partner', sa.String(length=40), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('expected_end_at', sa.DateTime(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('risk_policies',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('segment', sa.String(length=40), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('effective_from', sa.DateTime(), nullable=False),
    sa.Column('effective_until', sa.DateTime(), nullable=True),
    sa.Column('next_review_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_policies_segment'), ['segment'], unique=False)

    op.create_table('compliance_holds',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('placed_at', sa.DateTime(), nullable=False),
    sa.Column('expected_review_at', sa.DateTime(), nullable=True),
    sa.Column('released_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('compliance_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_holds_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('credit_lines',
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('total_limit_cents', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('max_open_loans', sa.Integer(), nullable=False),
    sa.Column('previous_limit_cents', sa.Integer(), nullable=True),
    sa.Column('limit_changed_at', sa.DateTime(), nullable=True),
    sa.Column('limit_change_reason', sa.String(length=60), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('closed_reason', sa.String(length=60), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('borrower_id')
    )
    op.create_table('credit_scores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('overdue_elsewhere_count', sa.Integer(), nullable=False),
    sa.Column('overdue_elsewhere_last_at', sa.DateTime(), nullable=True),
    sa.Column('inquiries_count', sa.Integer(), nullable=False),
    sa.Column('inquiries_window_days', sa.Integer(), nullable=False),
    sa.Column('debt_ratio', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('credit_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_scores_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('identity_documents',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('document_type', sa.String(length=30), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('verified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('identity_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_documents_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('loans',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('principal_cents', sa.Integer(), nullable=False),
    sa.Column('outstanding_cents', sa.Integer(), nullable=False),
    sa.Column('instalments_total', sa.Integer(), nullable=False),
    sa.Column('instalments_paid', sa.Integer(), nullable=False),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('next_due_date', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('risk_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('reviewed_at', sa.DateTime(), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('next_review_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_reviews_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('appeals',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('decision_id', sa.String(length=40), nullable=False),
    sa.Column('reason_code', sa.String(length=60), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('submitted_at', sa.DateTime(), nullable=False),
    sa.Column('respond_by', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('restored_limit_cents', sa.Integer(), nullable=True),
    sa.Column('open_slot', sa.String(length=140), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.ForeignKeyConstraint(['decision_id'], ['decisions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('idempotency_key', name='uq_appeals_idempotency_key'),
    sa.UniqueConstraint('open_slot', name='uq_appeals_open_slot')
    )
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appeals_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('overdue_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('due_date', sa.DateTime(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('days_overdue', sa.Integer(), nullable=False),
    sa.Column('cleared_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('overdue_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_overdue_records_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('repayments',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('loan_id', sa.String(length=40), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=False),
    sa.Column('expected_post_at', sa.DateTime(), nullable=False),
    sa.Column('posted_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.ForeignKeyConstraint(['loan_id'], ['loans.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repayments_borrower_id'), ['borrower_id'], unique=False)

    op.create_table('reason_waivers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('borrower_id', sa.String(length=64), nullable=False),
    sa.Column('reason_code', sa.String(length=60), nullable=False),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.Column('appeal_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['appeal_id'], ['appeals.id'], ),
    sa.ForeignKeyConstraint(['borrower_id'], ['borrowers.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('reason_waivers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reason_waivers_borrower_id'), ['borrower_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reason_waivers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reason_waivers_borrower_id'))

    op.drop_table('reason_waivers')
    with op.batch_alter_table('repayments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repayments_borrower_id'))

    op.drop_table('repayments')
    with op.batch_alter_table('overdue_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_overdue_records_borrower_id'))

    op.drop_table('overdue_records')
    with op.batch_alter_table('appeals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appeals_borrower_id'))

    op.drop_table('appeals')
    with op.batch_alter_table('risk_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_reviews_borrower_id'))

    op.drop_table('risk_reviews')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loans_borrower_id'))

    op.drop_table('loans')
    with op.batch_alter_table('identity_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_documents_borrower_id'))

    op.drop_table('identity_documents')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decisions_borrower_id'))

    op.drop_table('decisions')
    with op.batch_alter_table('credit_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_scores_borrower_id'))

    op.drop_table('credit_scores')
    op.drop_table('credit_lines')
    with op.batch_alter_table('compliance_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_holds_borrower_id'))

    op.drop_table('compliance_holds')
    with op.batch_alter_table('risk_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_policies_segment'))

    op.drop_table('risk_policies')
    op.drop_table('incidents')
    with op.batch_alter_table('funding_quota_windows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_funding_quota_windows_funding_partner'))

    op.drop_table('funding_quota_windows')
    op.drop_table('borrowers')
