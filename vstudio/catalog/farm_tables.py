"""Tables of the render farm: jobs, blocks, tasks, outputs, logs, workers, blocklist.

JSON values (params, tags, frames, inputs) are stored as text: the manager never queries
inside them, and text works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from vstudio.catalog.tables import metadata

farm_jobs = sa.Table(
    "farm_jobs", metadata,
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

farm_job_after = sa.Table(
    "farm_job_after", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("farm_jobs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("after_id", sa.Integer, primary_key=True),
    sa.Index("ix_farm_job_after_after", "after_id"),
)

farm_blocks = sa.Table(
    "farm_blocks", metadata,
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

farm_workers = sa.Table(
    "farm_workers", metadata,
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
    # What the node said about itself at registration (version, OS, CPU, memory): JSON.
    sa.Column("system", sa.Text, nullable=False, server_default="{}"),
    # Tags an admin set: the node's own, sent when it registers, no longer replace them.
    sa.Column("tags_fixed", sa.Boolean, nullable=False, server_default=sa.false()),
    # Hours when the node may render (``farm.hours``); NULL: always.
    sa.Column("schedule", sa.String(200)),
    # The IANA time zone those hours are in (a volunteer's machine abroad); NULL: the
    # manager's local time.
    sa.Column("schedule_tz", sa.String(64)),
    # The machine's CPU and memory use in percent, from its last heartbeat.
    sa.Column("cpu_use", sa.Float),
    sa.Column("mem_use", sa.Float),
)

farm_tasks = sa.Table(
    "farm_tasks", metadata,
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

farm_outputs = sa.Table(
    "farm_outputs", metadata,
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

farm_logs = sa.Table(
    "farm_logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.Integer, sa.ForeignKey("farm_tasks.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("line", sa.Text, nullable=False),
    sa.Index("ix_farm_logs_task", "task_id", "id"),
)

farm_blocklist = sa.Table(
    "farm_blocklist", metadata,
    sa.Column("job_id", sa.Integer, sa.ForeignKey("farm_jobs.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("worker_id", sa.Integer, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text),
)

# One row: every farm write transaction counts itself here (last, just before its
# commit), so each manager sharing the database learns from one cheap read whether
# anything changed since its cached answers (``farm.freshness``).
farm_version = sa.Table(
    "farm_version", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("batches", sa.BigInteger, nullable=False),
    sa.Column("changes", sa.BigInteger, nullable=False),
)

FARM_TABLES = [farm_jobs, farm_job_after, farm_blocks, farm_workers, farm_tasks, farm_outputs,
               farm_logs, farm_blocklist, farm_version]
