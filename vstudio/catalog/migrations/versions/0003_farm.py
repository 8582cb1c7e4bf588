"""Farm: jobs, blocks, tasks, outputs, logs, workers, blocklist.

Revision ID: 0003_farm

Frozen: the tables as they were at this revision, written out in full, so that later
changes to ``catalog/farm_tables.py`` come with their own migrations and never change
what this one creates (fresh installs and upgrades end with the same schema).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_farm"
down_revision = "0001"
branch_labels = ("farm",)
depends_on = None

TABLES = ["farm_jobs", "farm_job_after", "farm_blocks", "farm_workers", "farm_tasks",
          "farm_outputs", "farm_logs", "farm_blocklist"]


def upgrade() -> None:
    op.create_table(
        "farm_jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("project", sa.String(128)),
        sa.Column("trusted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),  # farm.model.JobState
        sa.Column("max_running", sa.Integer),
        sa.Column("blocklist_after", sa.Integer, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False, server_default="[]"),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Index("ix_farm_jobs_state", "state"),
        # ids are never reused, so per-process caches keyed by id cannot go stale
        sqlite_autoincrement=True,
    )
    op.create_table(
        "farm_job_after",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("farm_jobs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("after_id", sa.Integer, primary_key=True),
        sa.Index("ix_farm_job_after_after", "after_id"),
    )
    op.create_table(
        "farm_blocks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("farm_jobs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("max_per_worker", sa.Integer),
        sa.Column("retries", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Float),
        # [[block id, "whole"|"frame"], ...]
        sa.Column("depends", sa.Text, nullable=False, server_default="[]"),
        sa.Index("ix_farm_blocks_job", "job_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "farm_workers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default="[]"),
        sa.Column("job_types", sa.Text, nullable=False, server_default="[]"),
        sa.Column("allow_commands", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("idle_only", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("draining", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("state", sa.String(32), nullable=False, server_default="idle"),
        sa.Column("registered", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    )
    op.create_table(
        "farm_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("farm_jobs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("block_id", sa.Integer, sa.ForeignKey("farm_blocks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("frames", sa.Text, nullable=False),  # JSON list of ints
        sa.Column("first_frame", sa.Integer, nullable=False),
        sa.Column("last_frame", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # farm.model.TaskStatus
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("worker_id", sa.Integer),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("frame", sa.Integer),
        sa.Column("lease_until", sa.Float),
        sa.Column("started", sa.Float),
        sa.Column("finished", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("log_count", sa.Integer, nullable=False, server_default="0"),
        # the claim: first queued task of a block; also counts per block and status
        sa.Index("ix_farm_tasks_block_status", "block_id", "status", "id"),
        sa.Index("ix_farm_tasks_job_status", "job_id", "status"),
        # running tasks (fair share, reaper) and a worker's tasks
        sa.Index("ix_farm_tasks_status_job", "status", "job_id"),
        sa.Index("ix_farm_tasks_worker", "worker_id", "status"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "farm_outputs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("farm_tasks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("job_id", sa.Integer, nullable=False),
        sa.Column("block_id", sa.Integer, nullable=False),
        sa.Column("frame", sa.Integer),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("oid", sa.String(64), nullable=False),
        sa.Column("seconds", sa.Float),
        sa.Column("peak_mem", sa.Float),
        sa.Column("thumbnail_oid", sa.String(64)),
        sa.Index("ix_farm_outputs_task", "task_id"),
        sa.Index("ix_farm_outputs_block_frame", "block_id", "frame"),
        sa.Index("ix_farm_outputs_job", "job_id"),
    )
    op.create_table(
        "farm_logs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task_id", sa.Integer, sa.ForeignKey("farm_tasks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
        sa.Index("ix_farm_logs_task", "task_id", "id"),
    )
    op.create_table(
        "farm_blocklist",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("farm_jobs.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("worker_id", sa.Integer, primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
