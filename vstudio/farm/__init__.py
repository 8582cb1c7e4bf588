"""The render farm manager's domain: jobs, blocks, tasks and the scheduler.

Terms: a *job* is what a person submits (name, owner, priority, ``after`` jobs); it has
*blocks* (one job type with typed parameters, tags, chunk size, retries, dependencies on
other blocks: ``whole`` or frame by ``frame``); a block's frames are cut into *tasks*
(chunks) that *workers* (render nodes) take one at a time under a *lease* renewed by
progress reports and heartbeats. Each hand-out of a task is an *attempt*; a report that
names an older attempt is stale and changes nothing.

Pure logic lives here (frames, specs, scheduler ranking); SQL lives in
``vstudio.catalog.farm_*``; HTTP in ``vstudio.api.routes_farm``.
"""
