"""revisit policy, source health, leases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('acquired_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_check_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('missing_checks', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_index(batch_op.f('ix_documents_next_check_at'), ['next_check_at'], unique=False)
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('incomplete', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('problem', sa.Text(), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('message', sa.Text(), nullable=True))
        batch_op.alter_column('document_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_events_source_id_sources'), 'sources', ['source_id'], ['id'])


def downgrade() -> None:
    op.execute("DELETE FROM events WHERE document_id IS NULL")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_events_source_id_sources'), type_='foreignkey')
        batch_op.alter_column('document_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('message')
        batch_op.drop_column('source_id')
    with op.batch_alter_table('crawl_runs', schema=None) as batch_op:
        batch_op.drop_column('problem')
        batch_op.drop_column('incomplete')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_next_check_at'))
        batch_op.drop_column('missing_checks')
        batch_op.drop_column('next_check_at')
    op.drop_table('leases')
