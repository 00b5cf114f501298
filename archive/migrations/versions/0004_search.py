"""search: normalised text per version and its character/bigram index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 17:00:00
"""

import sqlalchemy as sa
from alembic import op

from archive.search import FTS_TABLE, create_index_structures, index_existing_versions

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('search_texts',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['versions.id'], name=op.f('fk_search_texts_version_id_versions')),
    sa.PrimaryKeyConstraint('version_id', name=op.f('pk_search_texts'))
    )
    connection = op.get_bind()
    create_index_structures(connection)
    index_existing_versions(connection)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TABLE {FTS_TABLE}")
    op.drop_table('search_texts')
