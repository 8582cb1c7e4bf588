"""Pure parts of the web page: view models, charts, ranges, redirects, CSRF tokens."""

from __future__ import annotations

import time

import pytest

from vstudio.web import views
from vstudio.web.media import disposition, inline_type, parse_range
from vstudio.web.render import duration, int_arg, size
from vstudio.web.session import csrf_for, safe_next


def _job(**kw: object) -> views.JobRow:
    base: dict[str, object] = dict(id=1, name="j", owner="a", status="running", priority=50,
                                   frames_done=0, frames_total=100, progress=0.0,
                                   created=0.0, started=None, finished=None)
    base.update(kw)
    return views.JobRow(**base)  # type: ignore[arg-type]


def test_eta_from_pace_and_none_without_one() -> None:
    now = time.time()
    j = _job(started=now - 100, progress=25.0)
    assert j.eta == pytest.approx(300, rel=0.05)
    assert _job(started=now - 100, progress=0.0).eta is None
    assert _job(started=None, progress=50.0).eta is None
    assert _job(started=now - 100, progress=50.0, status="paused").eta is None
    assert _job(started=now - 100, finished=now - 40, progress=100.0, status="done").eta is None
    assert _job(started=now - 100, finished=now - 40, status="done").elapsed == pytest.approx(60)


def test_actions_follow_status() -> None:
    assert "pause" in views.actions_for("running") and "resume" not in views.actions_for("running")
    assert "resume" in views.actions_for("paused")
    assert "cancel" not in views.actions_for("done")
    assert "retry" in views.actions_for("failed", failed=2)
    # "Retry failed" means something only when a task failed (or the job was canceled)
    assert "retry" not in views.actions_for("running")
    assert "retry" in views.actions_for("running", failed=1)
    assert "retry" in views.actions_for("canceled", canceled=3)
    # a pausing job can be resumed but not paused again
    assert views.actions_for("pausing")[:2] == ["resume", "cancel"]
    assert {"delete", "priority"} <= set(views.actions_for("canceled"))


def test_frame_chart_buckets_keep_the_slowest_frame() -> None:
    points = [(f, 1.0) for f in range(1, 10_001)]
    points[6_000] = (6_001, 9.0)
    c = views.frame_chart(points, max_bars=100)
    assert c["n"] == 10_000 and c["max"] == 9.0
    assert c["path"].count("M") == 100  # one path, one bar per bucket
    assert c["slowest"][0] == (6_001, 9.0)
    assert views.frame_chart([])["path"] == ""


def test_line_chart_scales_into_the_box() -> None:
    c = views.line_chart({"busy": [(0.0, 0.0), (50.0, 4.0), (100.0, 2.0)]}, 0.0, 100.0)
    xs = [float(p.split(",")[0]) for p in c["lines"]["busy"].split()]
    ys = [float(p.split(",")[1]) for p in c["lines"]["busy"].split()]
    assert xs[0] == c["pad"] and xs[-1] <= c["width"]
    assert min(ys) == pytest.approx(6.0) and max(ys) == c["base"]


@pytest.mark.parametrize(("header", "want"), [
    (None, None), ("bytes=0-99", (0, 99)), ("bytes=900-", (900, 999)),
    ("bytes=-100", (900, 999)), ("bytes=0-5000", (0, 999)), ("bytes=1000-", (-1, -1)),
    ("bytes=5-1", (-1, -1)), ("bytes=-", None), ("items=0-1", None), ("bytes=0-1,4-5", None),
])
def test_parse_range(header: str | None, want: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == want


def test_downloads_never_inline_active_content() -> None:
    assert inline_type("a.PNG") == "image/png" and inline_type("v.mp4") == "video/mp4"
    for name in ("x.html", "x.svg", "x.blend", "noext", "x.js"):
        assert inline_type(name) is None
    d = disposition("attachment", 'dir/ev"il;\r\nname\u00e9.txt')
    assert "\r" not in d and "\n" not in d and '"ev_il_' in d
    assert "filename*=UTF-8''ev%22il%3B%0D%0Aname%C3%A9.txt" in d


@pytest.mark.parametrize(("target", "want"), [
    ("/jobs/3", "/jobs/3"), (None, "/"), ("", "/"), ("https://evil.example/", "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("jobs", "/"),
])
def test_safe_next_never_leaves_the_site(target: str | None, want: str) -> None:
    assert safe_next(target) == want


def test_csrf_token_is_per_session_and_not_the_token_hash() -> None:
    import hashlib

    a, b = csrf_for("vst_a"), csrf_for("vst_b")
    assert a != b and len(a) == 40 and csrf_for("vst_a") == a
    assert a not in hashlib.sha256(b"vst_a").hexdigest()


def test_small_formatters() -> None:
    assert duration(None) == "–" and duration(5) == "5s" and duration(125) == "2m 05s"
    assert duration(7260) == "2h 01m" and duration(90000) == "1d 1h"
    assert size(0) == "0 B" and size(2048) == "2.0 KiB"
    assert int_arg("7", 1, 1, 5) == 5 and int_arg("x", 3, 1, 5) == 3 and int_arg(None, 2, 1, 5) == 2
    assert int_arg("-9", 1, 1, 5) == 1


def test_log_marks_each_new_attempt() -> None:
    from vstudio.web.tasks_pages import with_attempts

    lines = [{"attempt": 1, "line": "a"}, {"attempt": 1, "line": "b"},
             {"attempt": 2, "line": "c"}]
    assert with_attempts(lines, 0) == ["──── attempt 1 ────", "a", "b",
                                       "──── attempt 2 ────", "c"]
    assert with_attempts(lines[2:], 2) == ["c"]  # the tail continues the same attempt


def test_a_paused_jobs_clock_stops_at_its_last_task() -> None:
    row = views.JobRow(id=1, name="j", owner="o", status="paused", priority=50,
                       frames_done=1, frames_total=4, progress=25.0, created=0.0,
                       started=100.0, finished=None, stopped=130.0)
    assert row.elapsed == 30.0
    running = views.JobRow(id=1, name="j", owner="o", status="running", priority=50,
                           frames_done=1, frames_total=4, progress=25.0, created=0.0,
                           started=100.0, finished=None, stopped=130.0)
    assert running.elapsed is not None and running.elapsed > 1000


def test_queue_eta_from_the_recent_pace_and_the_slots() -> None:
    assert views.queue_eta(0, 0, []) == 0.0
    assert views.queue_eta(10, 2, [4.0, 100.0, 6.0]) == 10 * 6.0 / 2  # the median, not mean
    assert views.queue_eta(10, 0, [5.0]) is None  # nobody renders: never empties
    assert views.queue_eta(10, 4, []) is None  # no pace yet
