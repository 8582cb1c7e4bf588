"""The one function that says what a job is doing and why (farm.condition)."""

from __future__ import annotations

from vstudio.farm.condition import BlockNeeds, JobFacts, NodeFacts, NodePool, job_condition

RENDER = BlockNeeds("render", "blender")


def node(i: int, **kw: object) -> NodeFacts:
    args: dict[str, object] = {"online": True, "job_types": frozenset({"blender", "ffmpeg"})}
    args.update(kw)
    return NodeFacts(i, f"node{i}", **args)  # type: ignore[arg-type]


def queued(*blocks: BlockNeeds, banned: frozenset[int] = frozenset()) -> JobFacts:
    return JobFacts("active", {"queued": 3}, queued_blocks=blocks or (RENDER,),
                    blocklisted=banned)


def test_a_queued_job_names_the_requirement_no_node_meets() -> None:
    gpu = BlockNeeds("render", "blender", frozenset({"gpu"}))
    c = job_condition(queued(gpu), [node(1, tags=frozenset({"cpu"}))])
    assert (c.status, c.reason) == ("queued", "no online render node has the tag gpu")
    c = job_condition(queued(BlockNeeds("bake", "command")), [node(1)])
    assert c.status == "queued" and "--allow-commands" in c.reason
    c = job_condition(queued(BlockNeeds("paint", "krita")), [node(1)])
    assert c.reason == "no online render node can run krita jobs"
    assert "registered" in job_condition(queued(), []).reason
    assert "1 offline" in job_condition(queued(), [node(1, online=False)]).reason
    assert "disabled or draining" in job_condition(queued(), [node(1, draining=True)]).reason


def test_every_able_node_kept_off_the_job_is_stalled_not_running() -> None:
    nodes = [node(1), node(2), node(3, tags=frozenset(), job_types=frozenset({"synfig"}))]
    c = job_condition(queued(banned=frozenset({1, 2})), nodes)
    assert c.status == "stalled" and "node1, node2" in c.reason and "blocklist" in c.reason
    # one able node left: queued, it will be taken
    assert job_condition(queued(banned=frozenset({1})), nodes).status == "queued"
    # with failed tasks beside the queued ones it is still stalled, not "running 0%"
    facts = JobFacts("active", {"queued": 1, "failed": 2}, queued_blocks=(RENDER,),
                     blocklisted=frozenset({1, 2}))
    assert job_condition(facts, nodes).status == "stalled"


def test_a_desktop_in_use_by_its_owner_is_named_not_counted_free() -> None:
    c = job_condition(queued(), [node(1, in_use=True)])
    assert (c.status, c.reason) == ("queued", "the render nodes that can take it are "
                                              "desktops in use by their owners now: node1")
    # Another node that could take it is the reason to look at instead.
    assert "ask for work" in job_condition(queued(), [node(1, in_use=True), node(2)]).reason


def test_busy_nodes_and_idle_nodes_give_different_reasons() -> None:
    assert "all busy" in job_condition(queued(), [node(1, busy=True)]).reason
    assert "ask for work" in job_condition(queued(), [node(1)]).reason


def test_waiting_on_jobs_and_on_frames_of_a_block() -> None:
    c = job_condition(JobFacts("waiting", {"queued": 2}, waiting_on_jobs={7: "running"}), [])
    assert (c.status, c.reason) == ("waiting", "waiting for job 7 to finish")
    c = job_condition(JobFacts("waiting", {"queued": 2}, waiting_on_jobs={7: "failed",
                                                                         9: "queued"}), [])
    assert c.reason.startswith("waiting for jobs 7, 9 to finish") and "job 7 failed" in c.reason
    c = job_condition(JobFacts("active", {"done": 2, "blocked": 1},
                               waiting_on_blocks=("render",)), [node(1)])
    assert (c.status, c.reason) == ("waiting", "waiting for frames of block render")


def test_pausing_until_running_tasks_end_then_paused() -> None:
    c = job_condition(JobFacts("paused", {"running": 2, "queued": 5}), [])
    assert c.status == "pausing" and "2 tasks still running" in c.reason
    assert job_condition(JobFacts("paused", {"queued": 5}), []).status == "paused"


def test_finished_and_running_jobs_need_no_reason() -> None:
    assert job_condition(JobFacts("active", {"running": 1, "queued": 9}), []).reason == ""
    assert job_condition(JobFacts("done", {"done": 3}), []).reason == ""
    assert job_condition(JobFacts("canceled", {"queued": 3}), []).status == "canceled"
    c = job_condition(JobFacts("active", {"failed": 2, "blocked": 1}), [])
    assert c.status == "failed" and "2 tasks failed" in c.reason


def test_one_pool_shared_by_many_jobs_answers_as_each_alone() -> None:
    # The jobs list asks about thousands of jobs with one pool of nodes: the answers kept
    # per kind of block must not leak between jobs kept off different nodes or busy ones.
    gpu = BlockNeeds("render", "blender", frozenset({"gpu"}))
    nodes = [node(1, tags=frozenset({"gpu"}), busy=True), node(2), node(3, busy=True)]
    jobs = [queued(gpu), queued(), queued(banned=frozenset({2})),
            queued(gpu, banned=frozenset({1})), queued(BlockNeeds("paint", "krita")), queued()]
    pool = NodePool(nodes)
    assert [job_condition(j, pool) for j in jobs] == [job_condition(j, nodes) for j in jobs]
    assert [job_condition(j, pool).status for j in jobs] == \
        ["queued", "queued", "queued", "stalled", "queued", "queued"]
    assert "all busy" in job_condition(jobs[0], pool).reason
    assert "all busy" in job_condition(jobs[2], pool).reason
    assert "ask for work" in job_condition(jobs[1], pool).reason
