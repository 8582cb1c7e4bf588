"""Moving a live Subversion studio: case-only renames, tolerant parsing, incremental and
resumed imports, renumbered dumps. Every dump is made by the real svnadmin."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import VSTUDIO, cli, cli_json, wait_for
from tests.svnkit import commit, compare, dump, head, new_repo, svn


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Seven revisions: case-only renames (file and folder), links, externals, mergeinfo,
    empty folders, a revision without svn:date."""
    repo, url, wc = new_repo(tmp_path_factory.mktemp("svnh"))
    (wc / "shots").mkdir()
    (wc / "shots" / "a.txt").write_text("a\n" * 50)
    (wc / "foo.blend").write_bytes(os.urandom(3000))
    (wc / "empty1").mkdir()
    (wc / "empty2").mkdir()
    (wc / "gone").mkdir()
    os.symlink("shots/a.txt", wc / "link")
    commit(wc, "r1: first")
    svn("mv", "-q", "foo.blend", "Foo.blend", cwd=wc)
    svn("mv", "-q", "shots", "Shots", cwd=wc)
    commit(wc, "r2: case-only renames", "bob")
    (wc / "Shots" / "a.txt").write_text("a\n" * 49 + "b\n")
    svn("rm", "-q", "gone", cwd=wc)
    commit(wc, "r3: edit, an empty folder removed")
    svn("propset", "-q", "svn:externals", "ext http://example.invalid/repo", ".", cwd=wc)
    svn("propset", "-q", "svn:mergeinfo", "/branches/x:2", "Shots", cwd=wc)
    svn("copy", "-q", "Foo.blend", "Foo_copy.blend", cwd=wc)
    commit(wc, "r4: externals, mergeinfo, copy")
    (wc / "Foo_copy.blend").write_bytes(os.urandom(2000))
    commit(wc, "r5: edit the copy")
    svn("rm", "-q", "Foo.blend", cwd=wc)
    commit(wc, "r6: delete", "bob")
    (wc / "new.txt").write_text("new\n")
    commit(wc, "r7: add")
    hook = repo / "hooks" / "pre-revprop-change"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    svn("propdel", "-q", "--revprop", "-r", "5", "svn:date", url)
    return repo, url


def _full(url: str, n: int = 7) -> dict[int, int]:
    return {r: r for r in range(1, n + 1)}


def test_case_only_renames_and_not_carried(tmp_path: Path, history: tuple[Path, str],
                                           studio_dir: Path) -> None:
    repo, url = history
    d = dump(repo, tmp_path / "h.dump")
    cli("project", "create", "p", "--studio", str(studio_dir))
    report = cli_json("svn-import", str(d), f"{studio_dir}/p")
    assert report["revisions"] == 7
    compare(studio_dir, "p", url, _full(url))
    notes = {n.split(": ")[0]: int(n.split(": ")[1].split(" ")[0]) for n in report["not_carried"]}
    # empty1 and empty2 are kept as empty folders, 'gone' until r3 (compare checks them)
    assert "empty folder" not in notes
    assert notes["svn:externals"] == 1 and notes["svn:mergeinfo"] == 1
    assert notes["svn:special link (kept as a file holding 'link TARGET')"] == 1
    assert notes["r0 property svn:date"] == 1
    assert notes["revision without svn:date (given the previous one's)"] == 1
    from vstudio.repo import open_reader
    from vstudio.studio import Studio

    s = Studio.open(studio_dir)
    try:
        log = {c.rev: c for c in open_reader(s).log("p")}
        assert log[5].time == log[4].time  # r5 has no date: r4's, not the import's
    finally:
        s.close()


def test_case_only_rename_with_vstudio_mv(tmp_path: Path, studio_dir: Path) -> None:
    cli("project", "create", "c", "--studio", str(studio_dir))
    wc = tmp_path / "wc"
    cli("checkout", f"{studio_dir}/c", str(wc))
    (wc / "shots").mkdir()
    (wc / "shots" / "foo.blend").write_bytes(os.urandom(100))
    (wc / "bar.txt").write_text("bar\n")
    cli("commit", "-m", "first", cwd=wc)
    cli("mv", "shots/foo.blend", "shots/Foo.blend", cwd=wc)
    assert cli_json("commit", "-m", "case", cwd=wc)["rev"] == 2
    cli("mv", "shots", "Shots", cwd=wc)
    assert cli_json("commit", "-m", "folder case", cwd=wc)["rev"] == 3
    log = cli_json("log", "-v", cwd=wc)
    assert log[0]["changed"] == ["Shots/Foo.blend", "shots/Foo.blend"]
    # Two live names differing only by case are still refused.
    (wc / "Bar.txt").write_text("other\n")
    r = cli("commit", "-m", "clash", cwd=wc, check=False)
    assert r.returncode == 1 and "differ only by case" in r.stderr


def _mutate(data: bytes, rev: int, old: bytes, new: bytes) -> bytes:
    """Replace the first ``old`` after revision ``rev``'s record."""
    at = data.index(f"Revision-number: {rev}\n".encode())
    i = data.index(old, at)
    return data[:i] + new + data[i + len(old):]


def test_tolerant_parsing_like_svnadmin(tmp_path: Path, history: tuple[Path, str],
                                        studio_dir: Path) -> None:
    repo, url = history
    data = dump(repo, tmp_path / "h.dump").read_bytes()
    # Property blocks edited without fixing their lengths (too long, too short, in both
    # headers alike): svnadmin reads them up to PROPS-END.
    pat = re.compile(rb"Prop-content-length: (\d+)\n(?:Text-content-length: \d+\n)?"
                     rb"Content-length: (\d+)\n")
    for rev, delta in ((1, 10), (4, -3), (5, 7)):
        m = pat.search(data, data.index(f"Revision-number: {rev}\n".encode()) + 30)
        assert m is not None
        data = (data[:m.start(1)] + str(int(m.group(1)) + delta).encode()
                + data[m.end(1):m.start(2)] + str(int(m.group(2)) + delta).encode()
                + data[m.end(2):])
    # Concatenated dumps (a second format header mid-stream), as 'cat a b' makes.
    tail = dump(repo, tmp_path / "t.dump", "-r", "7", "--incremental").read_bytes()
    cut = data.index(b"Revision-number: 7\n")
    odd = tmp_path / "odd.dump"
    odd.write_bytes(data[:cut] + tail)
    ref = tmp_path / "ref"
    subprocess.run(["svnadmin", "create", str(ref)], check=True)
    with open(odd, "rb") as f:  # the reference: svnadmin loads it
        subprocess.run(["svnadmin", "load", "-q", str(ref)], stdin=f, check=True)
    cli("project", "create", "odd", "--studio", str(studio_dir))
    assert cli_json("svn-import", str(odd), f"{studio_dir}/odd")["revisions"] == 7
    compare(studio_dir, "odd", f"file://{ref}", _full(url))


def test_refusals_name_revision_path_and_offset(tmp_path: Path, history: tuple[Path, str],
                                                studio_dir: Path) -> None:
    repo, _url = history
    data = dump(repo, tmp_path / "h.dump").read_bytes()
    at = data.index(b"Node-path: Shots/a.txt\n", data.index(b"Revision-number: 3\n"))
    text = data.index(b"a\na\n", at)
    bad = tmp_path / "md5.dump"
    bad.write_bytes(data[:text] + b"X" + data[text + 1:])
    cli("project", "create", "m", "--studio", str(studio_dir))
    r = cli("svn-import", str(bad), f"{studio_dir}/m", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"SHA-1 (the dump is corrupt) (at r3, node Shots/a.txt, byte {at})" in r.stderr
    assert head(studio_dir, "m") == 2  # whole revisions only
    # A dump without SHA-1s (as older svnadmin wrote them) is checked with the MD5s.
    old = re.sub(rb"Text-content-sha1: [0-9a-f]+\n", b"", bad.read_bytes())
    bad.write_bytes(old)
    at = old.index(b"Node-path: Shots/a.txt\n", old.index(b"Revision-number: 3\n"))
    cli("project", "create", "m5", "--studio", str(studio_dir))
    r = cli("svn-import", str(bad), f"{studio_dir}/m5", check=False)
    assert f"MD5 (the dump is corrupt) (at r3, node Shots/a.txt, byte {at})" in r.stderr
    assert head(studio_dir, "m5") == 2
    # A bad date: the text is shown, not a Python bytes repr, with the revision.
    m = re.compile(rb"svn:date\nV 27\n(.{27})\n").search(data, data.index(b"Revision-number: 2"))
    assert m is not None
    baddate = tmp_path / "date.dump"
    baddate.write_bytes(data[:m.start(1)] + b"2026-13-45T99:99:99.000000Z" + data[m.end(1):])
    cli("project", "create", "d", "--studio", str(studio_dir))
    r = cli("svn-import", str(baddate), f"{studio_dir}/d", check=False)
    rev2 = data.index(b"Revision-number: 2\n")
    assert r.returncode == 1
    assert f"bad svn:date '2026-13-45T99:99:99.000000Z' (at r2, byte {rev2})" in r.stderr
    assert "b'" not in r.stderr
    # A corrupt property block names its record.
    pb = data.index(b"K 10\nsvn:author", rev2)
    broken = tmp_path / "props.dump"
    broken.write_bytes(data[:pb] + b"Q 10\nsvn:author" + data[pb + 15:])
    cli("project", "create", "b", "--studio", str(studio_dir))
    r = cli("svn-import", str(broken), f"{studio_dir}/b", check=False)
    assert r.returncode == 1 and "corrupt property block" in r.stderr
    assert f"(at r2, byte {rev2})" in r.stderr


def test_refused_revision_in_a_batch_keeps_the_ones_before(tmp_path: Path,
                                                           studio_dir: Path) -> None:
    """A dump file's revisions are committed in batches: a revision the project refuses
    (two live names differing only by case) is named, and the ones before it are kept."""
    repo, _url, wc = new_repo(tmp_path / "svn")
    for i, name in enumerate(("bar.txt", "x.txt", "Bar.txt", "y.txt")):
        (wc / name).write_text(f"{i}\n")
        commit(wc, f"add {name}")
    data = dump(repo, tmp_path / "c.dump")
    cli("project", "create", "c", "--studio", str(studio_dir))
    r = cli("svn-import", str(data), f"{studio_dir}/c", check=False)
    rev3 = data.read_bytes().index(b"Revision-number: 3\n")
    assert r.returncode == 1 and "differ only by case" in r.stderr
    assert f"(at r3, byte {rev3})" in r.stderr and "Traceback" not in r.stderr
    assert head(studio_dir, "c") == 2


def test_incremental_dumps_continue_the_project(tmp_path: Path, history: tuple[Path, str],
                                                studio_dir: Path) -> None:
    repo, url = history
    cli("project", "create", "inc", "--studio", str(studio_dir))
    first = dump(repo, tmp_path / "a.dump", "-r", "0:3")
    assert cli_json("svn-import", str(first), f"{studio_dir}/inc")["last"] == 3
    later = dump(repo, tmp_path / "c.dump", "-r", "6:7", "--incremental")
    r = cli("svn-import", str(later), f"{studio_dir}/inc", check=False)
    assert r.returncode == 1 and "expected r4, found r6" in r.stderr
    nxt = dump(repo, tmp_path / "b.dump", "-r", "4:7", "--incremental", "--deltas")
    report = cli_json("svn-import", str(nxt), f"{studio_dir}/inc")
    assert (report["first"], report["last"], report["skipped"]) == (4, 7, 0)
    compare(studio_dir, "inc", url, _full(url))


def test_killed_import_resumes_with_the_same_command(tmp_path: Path, history: tuple[Path, str],
                                                     studio_dir: Path) -> None:
    repo, url = history
    d = dump(repo, tmp_path / "h.dump", "--deltas")
    data = d.read_bytes()
    cli("project", "create", "k", "--studio", str(studio_dir))
    proc = subprocess.Popen([*VSTUDIO, "svn-import", "-", f"{studio_dir}/k"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    # Everything up to r4's first node: r1..r3 get committed, r4 is being read.
    r4 = data.index(b"Revision-number: 4\n")
    proc.stdin.write(data[:data.index(b"Node-path:", r4) + 20])
    proc.stdin.flush()
    try:
        wait_for(lambda: head(studio_dir, "k") == 3, 60, "r3 imported")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert head(studio_dir, "k") == 3
    report = cli_json("svn-import", str(d), f"{studio_dir}/k")
    assert (report["skipped"], report["first"], report["last"]) == (3, 4, 7)
    compare(studio_dir, "k", url, _full(url))
    # Another repository's dump does not pass for the project's history.
    other, _ou, owc = new_repo(tmp_path / "other")
    (owc / "x.txt").write_text("x\n")
    commit(owc, "something else")
    r = cli("svn-import", str(dump(other, tmp_path / "o.dump")), f"{studio_dir}/k", check=False)
    assert r.returncode == 1 and "another repository" in r.stderr


def test_renumbered_dump_keeps_original_numbers(tmp_path: Path, history: tuple[Path, str],
                                                studio_dir: Path) -> None:
    repo, url = history
    part = dump(repo, tmp_path / "p.dump", "-r", "3:7")  # r3 as a full tree, then r4..r7
    cli("project", "create", "ren", "--studio", str(studio_dir))
    r = cli("svn-import", str(part), f"{studio_dir}/ren", check=False)
    assert r.returncode == 1 and "expected r1, found r3" in r.stderr and "--renumber" in r.stderr
    report = cli_json("svn-import", "--renumber", str(part), f"{studio_dir}/ren")
    assert (report["first"], report["last"]) == (1, 5)
    compare(studio_dir, "ren", url, {r: r + 2 for r in range(1, 6)})
    wc = tmp_path / "wc"
    cli("checkout", f"{studio_dir}/ren", str(wc))
    log = cli_json("log", cwd=wc)
    assert [e["props"]["svn-original-rev"] for e in log] == ["7", "6", "5", "4", "3"]
    text = cli("log", "-v", "-l", "1", cwd=wc).stdout
    assert "r5 |" in text and "svn-original-rev: 7" in text
    again = cli_json("svn-import", "--renumber", str(part), f"{studio_dir}/ren")
    assert (again["revisions"], again["skipped"]) == (0, 5)


def test_import_helpers_keep_a_path_and_spread_new_ones(studio_dir: Path,
                                                        tmp_path: Path) -> None:
    """Every version of a path (any case) goes to one helper, in order; a new path goes to
    the helper given the fewest bytes, so three busy shots spread over three helpers; what
    the helpers store reads back."""
    from vstudio.repo.svnworkers import BlendWorkers
    from vstudio.studio import Studio

    texts = {}
    for i, (key, size) in enumerate([("a.blend", 3000), ("b.blend", 2000), ("A.blend", 100),
                                     ("c.blend", 500), ("b.blend", 100)]):
        f = tmp_path / f"t{i}"
        f.write_bytes(os.urandom(size))
        texts[i] = (key, f, f.read_bytes())
    workers = BlendWorkers(studio_dir, 3)
    try:
        futures = [(data, workers.submit(f, key)) for key, f, data in texts.values()]
        oids = [(data, fut.result(timeout=60)) for data, fut in futures]
        workers.sync()  # their write batches are durable
    finally:
        workers.close()
    assert workers.helper_of == {"a.blend": 0, "b.blend": 1, "c.blend": 2}
    assert workers.load == [3100, 2100, 500]
    s = Studio.open(studio_dir)
    try:
        assert all(s.store.get_bytes(oid) == data for data, oid in oids)
    finally:
        s.close()


def test_helpers_check_the_texts_they_read_from_the_dump(
        tmp_path: Path, studio_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """.blend texts of a dump file are read and checked by the helper processes, where
    they lie in the file: a corrupt one is refused naming its revision, node and record,
    the revisions before it are kept, and the same command resumes once the dump is good."""
    repo, url, wc = new_repo(tmp_path / "b")
    for i in range(1, 5):
        (wc / "s.blend").write_bytes(b"BLENDER-v304" + os.urandom(4000) + bytes([i]))
        commit(wc, f"r{i}: save")
    good = dump(repo, tmp_path / "b.dump")
    data = good.read_bytes()
    at = data.index(b"Node-path: s.blend\n", data.index(b"Revision-number: 3\n"))
    text = data.index(b"BLENDER-v304", at)
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data[:text + 100] + bytes([data[text + 100] ^ 1]) + data[text + 101:])
    cli("project", "create", "hb", "--studio", str(studio_dir))
    r = cli("svn-import", str(bad), f"{studio_dir}/hb", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"SHA-1 (the dump is corrupt) (at r3, node s.blend, byte {at})" in r.stderr
    assert head(studio_dir, "hb") == 2
    # A dump cut inside r3's .blend text (a copy still being written): r1 and r2 are kept.
    cut = tmp_path / "cut.dump"
    cut.write_bytes(data[:text + 1000])
    cli("project", "create", "hcut", "--studio", str(studio_dir))
    r = cli("svn-import", str(cut), f"{studio_dir}/hcut", check=False)
    assert r.returncode == 1
    assert r.stderr.strip().endswith(f"error: the dump is truncated (at r3, node s.blend, "
                                     f"byte {at})")
    assert "could not commit" not in r.stderr and head(studio_dir, "hcut") == 2
    report = cli_json("svn-import", str(good), f"{studio_dir}/hb")
    assert (report["skipped"], report["first"], report["last"]) == (2, 3, 4)
    compare(studio_dir, "hb", url, {r: r for r in range(1, 5)})
    # Batches of one revision: each is committed while the next is read (a batch behind);
    # the corrupt text of r3 is found when r4 is read, r1 and r2 are kept.
    from vstudio.cli.repos import open_url
    from vstudio.repo import svnimport

    monkeypatch.setattr(svnimport, "BATCH_REVISIONS", 1)
    cli("project", "create", "hc", "--studio", str(studio_dir))
    backend = open_url(f"{studio_dir}/hc")
    try:
        with open(bad, "rb") as f, pytest.raises(svnimport.BadDump) as e:
            svnimport.import_dump(f, backend)
        assert f"SHA-1 (the dump is corrupt) (at r3, node s.blend, byte {at})" in e.value.message
    finally:
        backend.close()
    assert head(studio_dir, "hc") == 2


def test_empty_subfolders_survive_copies_and_replaces(tmp_path: Path, studio_dir: Path) -> None:
    """A folder emptied by a delete is still Subversion's: copying or replacing the folder
    above it later in the same import (or in a later one) keeps it, empty."""
    repo, url, wc = new_repo(tmp_path / "e")
    (wc / "A" / "sub").mkdir(parents=True)
    (wc / "A" / "sub" / "f.txt").write_text("f\n")
    (wc / "A" / "keep.txt").write_text("k\n")
    commit(wc, "r1: A with a subfolder")
    svn("copy", "-q", "A", "B", cwd=wc)
    commit(wc, "r2: copy A to B")
    svn("rm", "-q", "B/sub/f.txt", cwd=wc)
    commit(wc, "r3: B/sub emptied")
    svn("copy", "-q", "B", "C", cwd=wc)
    commit(wc, "r4: copy B to C")
    svn("rm", "-q", "C", cwd=wc)
    svn("copy", "-q", f"{url}/B@3", "C", cwd=wc)
    commit(wc, "r5: C replaced by a copy of B@3")
    svn("rm", "-q", "A/sub/f.txt", cwd=wc)
    commit(wc, "r6: A/sub emptied")
    svn("rm", "-q", "B", cwd=wc)
    svn("copy", "-q", "A", "B", cwd=wc)
    commit(wc, "r7: B replaced by a copy of A")
    assert b"R /B (from /A:6)" in svn("log", "-v", "-r", "7", url)  # a real replace
    whole = dump(repo, tmp_path / "e.dump")
    cli("project", "create", "e1", "--studio", str(studio_dir))
    assert cli_json("svn-import", str(whole), f"{studio_dir}/e1")["last"] == 7
    compare(studio_dir, "e1", url, _full(url))
    # The same history in two imports: the second starts on a head whose folders are known
    # only from the stored tree.
    cli("project", "create", "e2", "--studio", str(studio_dir))
    cli_json("svn-import", str(dump(repo, tmp_path / "a.dump", "-r", "0:2")), f"{studio_dir}/e2")
    rest = dump(repo, tmp_path / "b.dump", "-r", "3:7", "--incremental")
    assert cli_json("svn-import", str(rest), f"{studio_dir}/e2")["last"] == 7
    compare(studio_dir, "e2", url, _full(url))


def test_corrupt_text_and_bad_node_in_one_revision(tmp_path: Path, studio_dir: Path) -> None:
    """A helper's corrupt .blend text and a record the importer refuses, both in r3: the
    error names r3 (the first of the two in the dump), and r1 and r2 are kept."""
    repo, url, wc = new_repo(tmp_path / "d")
    for i in range(1, 5):
        (wc / "s.blend").write_bytes(b"BLENDER-v304" + os.urandom(4000) + bytes([i]))
        (wc / f"t{i}.txt").write_text(f"{i}\n")
        commit(wc, f"r{i}: save")
    data = dump(repo, tmp_path / "d.dump").read_bytes()
    r3 = data.index(b"Revision-number: 3\n")
    blend = data.index(b"Node-path: s.blend\n", r3)
    text = data.index(b"BLENDER-v304", blend)
    node = data.index(b"Node-path: t3.txt\n", r3)
    action = data.index(b"Node-action: add\n", node)
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data[:text + 100] + bytes([data[text + 100] ^ 1]) + data[text + 101:action]
                    + b"Node-action: adX\n" + data[action + 17:])
    cli("project", "create", "dd", "--studio", str(studio_dir))
    r = cli("svn-import", str(bad), f"{studio_dir}/dd", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    if blend < node:
        assert f"SHA-1 (the dump is corrupt) (at r3, node s.blend, byte {blend})" in r.stderr
    else:
        assert f"unknown Node-action 'adX' (at r3, node t3.txt, byte {node})" in r.stderr
    assert head(studio_dir, "dd") == 2
    compare(studio_dir, "dd", url, {1: 1, 2: 2})


def test_deltas_of_blend_texts_in_helpers(tmp_path: Path, studio_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A --deltas dump's .blend texts are applied and stored by the helper processes, on
    their bases kept there, also across batches (one revision each here, one helper given
    three files per revision, so its jobs queue up behind each batch's commit)."""
    from vstudio.cli.repos import open_url
    from vstudio.repo import svnimport

    repo, url, wc = new_repo(tmp_path / "x")
    texts = {n: bytearray(b"BLENDER-v304" + os.urandom(600_000)) for n in "abc"}
    for i in range(1, 6):
        for n, data in texts.items():
            data[1000 * i:1000 * i + 50] = os.urandom(50)  # a small change each save
            (wc / f"{n}.blend").write_bytes(data)
        commit(wc, f"r{i}: save")
    for i, n in ((6, "a"), (7, "b")):  # r7's base is stored (its batch committed) by then
        texts[n][5000:5010] = os.urandom(10)
        (wc / f"{n}.blend").write_bytes(texts[n])
        commit(wc, f"r{i}: save {n}")
    d = dump(repo, tmp_path / "x.dump", "--deltas")
    assert d.read_bytes().count(b"Text-delta: true") == 17
    monkeypatch.setattr(svnimport, "BATCH_REVISIONS", 1)
    monkeypatch.setenv("VSTUDIO_IMPORT_HELPERS", "1")
    cli("project", "create", "x", "--studio", str(studio_dir))
    backend = open_url(f"{studio_dir}/x")
    try:
        with open(d, "rb") as f:
            report = svnimport.import_dump(f, backend)
    finally:
        backend.close()
    assert (report["first"], report["last"], report["files"]) == (1, 7, 17)
    compare(studio_dir, "x", url, _full(url, 7))
    # A corrupt delta is refused by its helper, naming its revision, node and record.
    data = d.read_bytes()
    at = data.index(b"Node-path: b.blend\n", data.index(b"Revision-number: 4\n"))
    m = re.compile(rb"SVN[\x00-\x02]").search(data, at)  # the delta, after its properties
    assert m is not None
    text = m.start()
    bad = tmp_path / "bad.dump"
    bad.write_bytes(data[:text + 20] + bytes([data[text + 20] ^ 0x55]) + data[text + 21:])
    cli("project", "create", "y", "--studio", str(studio_dir))
    r = cli("svn-import", str(bad), f"{studio_dir}/y", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"(at r4, node b.blend, byte {at})" in r.stderr
    assert head(studio_dir, "y") == 3
