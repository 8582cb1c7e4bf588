"""The .blend parser, layout transform and pointer codec on synthetic block streams."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vstudio.store import blend
from vstudio.store.blend import BlendFormatError, decode_header, decode_layout, layout_pieces

# A tiny SDNA: Link {*next, *prev}; ID {*next, *prev, name[24], session_uuid, pad};
# Thing {ID id, Thing *other, float co[4], void *runtime}.
NAMES = ["*next", "*prev", "name[24]", "session_uuid", "pad", "id", "*other", "co[4]",
         "*runtime"]
TYPES = ["char", "int", "float", "void", "Link", "ID", "Thing"]


def _sizes(psize: int) -> dict[str, int]:
    id_size = 2 * psize + 24 + 4 + 4
    return {"char": 1, "int": 4, "float": 4, "void": 0, "Link": 2 * psize, "ID": id_size,
            "Thing": id_size + psize + 16 + psize}


def make_sdna(psize: int, le: bool) -> bytes:
    e = "<" if le else ">"
    sizes = _sizes(psize)

    def strings(tag: bytes, items: list[str]) -> bytes:
        raw = tag + struct.pack(e + "i", len(items)) + b"".join(s.encode() + b"\0" for s in items)
        return raw + bytes(-len(raw) % 4)

    out = b"SDNA" + strings(b"NAME", NAMES) + strings(b"TYPE", TYPES)
    tlen = b"TLEN" + struct.pack(f"{e}{len(TYPES)}h", *(sizes[t] for t in TYPES))
    out += tlen + bytes(-len(tlen) % 4)
    t, n = TYPES.index, NAMES.index
    structs = [
        (t("Link"), [(t("void"), n("*next")), (t("void"), n("*prev"))]),
        (t("ID"), [(t("void"), n("*next")), (t("void"), n("*prev")), (t("char"), n("name[24]")),
                   (t("int"), n("session_uuid")), (t("int"), n("pad"))]),
        (t("Thing"), [(t("ID"), n("id")), (t("Thing"), n("*other")), (t("float"), n("co[4]")),
                      (t("void"), n("*runtime"))]),
    ]
    out += b"STRC" + struct.pack(e + "i", len(structs))
    for ti, fields in structs:
        out += struct.pack(e + "hh", ti, len(fields))
        for ft, fn in fields:
            out += struct.pack(e + "hh", ft, fn)
    return out


def make_blend(blocks: list[tuple[bytes, int, int, int, bytes]], *, psize: int = 8,
               le: bool = True, large: bool = False, version: int = 304,
               with_dna: bool = True) -> bytes:
    """blocks: (code, old address, sdna index, count, body); ENDB (and DNA1) appended."""
    e = "<" if le else ">"
    if large:
        out = b"BLENDER17-01" + (b"v" if le else b"V") + b"%04d" % version
    else:
        out = b"BLENDER" + (b"-" if psize == 8 else b"_") + (b"v" if le else b"V") + \
            b"%03d" % version
    all_blocks = list(blocks)
    if with_dna:
        all_blocks.append((b"DNA1", 0x7F0000001000, 0, 1, make_sdna(psize, le)))
    all_blocks.append((b"ENDB", 0, 0, 0, b""))
    for code, old, sdna, count, body in all_blocks:
        if large:
            out += struct.pack(e + "4siQqq", code, sdna, old, len(body), count)
        elif psize == 8:
            out += struct.pack(e + "4siQii", code, len(body), old, sdna, count)
        else:
            out += struct.pack(e + "4siIii", code, len(body), old & 0xFFFFFFFF, sdna, count)
        out += body
    return out


def thing(psize: int, uuid: int, other: int, runtime: int, name: bytes = b"thing") -> bytes:
    p = "Q" if psize == 8 else "I"
    mask = (1 << (8 * psize)) - 1
    other, runtime = other & mask, runtime & mask
    return (struct.pack(f"<{p}{p}", 0, 0) + name.ljust(24, b"\0") + struct.pack("<ii", uuid, 0)
            + struct.pack(f"<{p}", other) + struct.pack("<4f", 1, 2, 3, 4)
            + struct.pack(f"<{p}", runtime))


def roundtrip(data: bytes) -> tuple[blend.Layout, list[tuple[bytes, bool]]]:
    lay, pieces = layout_pieces(data)
    pieces = list(pieces)
    out = b"".join(decode_layout(lay.params(), iter(p for p, _ in pieces)))
    assert out == data
    return lay, pieces


# --- headers ------------------------------------------------------------------------------

@pytest.mark.parametrize(("head", "psize", "le", "version", "bhead"), [
    (b"BLENDER-v304", 8, True, 304, 24),
    (b"BLENDER_v279", 4, True, 279, 20),
    (b"BLENDER-V250", 8, False, 250, 24),
    (b"BLENDER17-01v0500", 8, True, 500, 32),
])
def test_header_layouts(head: bytes, psize: int, le: bool, version: int, bhead: int) -> None:
    h = decode_header(head + bytes(8))
    assert (h.pointer_size, h.little_endian, h.version, h.bhead_size) == (psize, le, version,
                                                                          bhead)


@pytest.mark.parametrize("head", [b"", b"BLENDER", b"BLENDEX-v304", b"BLENDER-x304",
                                  b"BLENDER-vABC", b"BLENDER18-01v0500", b"BLENDER17-02v0500",
                                  b"BLENDER17_01v0500"])
def test_bad_headers_are_refused(head: bytes) -> None:
    with pytest.raises(BlendFormatError):
        decode_header(head + bytes(17))
    assert not blend.is_blend(head)


# --- layouts on every header variant ------------------------------------------------------

@pytest.mark.parametrize(("psize", "le", "large"), [(8, True, False), (4, True, False),
                                                    (8, False, False), (8, True, True),
                                                    (4, False, False)])
def test_layout_round_trip_every_variant(psize: int, le: bool, large: bool) -> None:
    a, b = 0x10010000, 0x10020000  # fit 32-bit pointers too
    blocks = [(b"OB\0\0", a, 2, 1, thing(psize, 7, b, 0xDEAD0000)),
              (b"DATA", b, 2, 1, thing(psize, 8, a, 0)),
              (b"DATA", 0x10030000, 0, 1, b"raw bytes, not a struct")]
    if not le:  # bodies of a big-endian file are opaque to this test: any bytes will do
        blocks = [(c, o, 0, 1, bytes(range(40))) for c, o, _, _, _ in blocks]
    lay, pieces = roundtrip(make_blend(blocks, psize=psize, le=le, large=large))
    assert lay.blocks == 5
    assert lay.normalised == le
    assert pieces[0][1] and pieces[0][0].startswith(b"BLENDER")


def test_pointers_and_session_fields_leave_bodies() -> None:
    """Two saves that differ only in addresses and session ids give the same body pieces."""
    def save(base: int, uuid: int) -> bytes:
        a, b, c = base + 0x100, base + 0x900, base + 0x5000
        return make_blend([(b"OB\0\0", a, 2, 1, thing(8, uuid, b, base + 77)),
                           (b"DATA", b, 2, 2, thing(8, uuid + 1, a, 0) + thing(8, 3, c, 0)),
                           (b"ME\0\0", c, 2, 1, thing(8, uuid + 2, a, 0))])

    _, one = roundtrip(save(0x7F1234560000, 11))
    _, two = roundtrip(save(0x7F9999990000, 42))
    bodies = [[p for p, inline in ps if not inline] for ps in (one, two)]
    # Everything but the per-session piece (addresses + side list) is shared.
    differ = [i for i, (x, y) in enumerate(zip(*bodies, strict=True)) if x != y]
    assert len(differ) == 1
    assert len(bodies[0]) == len(bodies[1])


def test_small_values_in_pointer_fields_survive() -> None:
    """Values that look like pointer codes (1, 2, 3 ...) are escaped, never mistaken."""
    a = 0x7F0000010000
    blocks = [(b"OB\0\0", a, 2, 1, thing(8, 1, v, v)) for v in (1, 2, 3, 4, 5, 6, 7)]
    blocks = [(c, a + i * 64, s, n, body) for i, (c, _, s, n, body) in enumerate(blocks)]
    lay, _ = roundtrip(make_blend(blocks))
    assert lay.normalised and lay.side > 0


def test_addresses_colliding_with_codes_are_left_alone() -> None:
    blocks = [(b"OB\0\0", 3, 2, 1, thing(8, 1, 5, 0)), (b"DATA", 5, 2, 1, thing(8, 1, 3, 0))]
    lay, _ = roundtrip(make_blend(blocks))
    assert not lay.normalised


def test_fields_past_their_struct_are_left_alone() -> None:
    """A damaged SDNA (here: a char 254 bytes long) puts ID's fields past the end of the
    structs holding an ID: rewriting them would not be undone, so bodies of those structs
    are kept as they are, and the file still comes back exact."""
    dna = make_sdna(8, True)
    at = dna.index(b"TLEN") + 4 + 2 * TYPES.index("char")
    dna = dna[:at] + struct.pack("<h", 254) + dna[at + 2:]
    a = 0x7F0000010000
    body = thing(8, 7, a, 0x5555) + thing(8, 8, a + 64, 0)
    roundtrip(make_blend([(b"OB\0\0", a, 2, 2, body), (b"OB\0\0", a + 64, 2, 1, body[:80]),
                          (b"DNA1", 0x7F0000001000, 0, 1, dna)], with_dna=False))


def test_without_dna_pointers_are_kept() -> None:
    lay, _ = roundtrip(make_blend([(b"OB\0\0", 0x7F00001000, 2, 1, thing(8, 1, 0, 0))],
                                  with_dna=False))
    assert not lay.normalised and lay.dna_index == -1


# --- bad input ------------------------------------------------------------------------------

GOOD = make_blend([(b"OB\0\0", 0x7F0000010000, 2, 1, thing(8, 7, 0x7F0000010000, 0)),
                   (b"DATA", 0x7F0000020000, 0, 1, b"x" * 100)])


@pytest.mark.parametrize("bad", [
    GOOD[:-1],  # truncated inside ENDB
    GOOD[:40],  # truncated inside a body
    GOOD + b"garbage",  # bytes after ENDB
    GOOD[:16] + struct.pack("<i", 10**6) + GOOD[20:],  # a length past the end
    GOOD[:16] + struct.pack("<i", -5) + GOOD[20:],  # a negative length
    GOOD[:12],  # header only
])
def test_corrupt_streams_raise(bad: bytes) -> None:
    with pytest.raises(BlendFormatError):
        layout_pieces(bad)


def test_decoder_refuses_wrong_streams() -> None:
    lay, pieces = layout_pieces(GOOD)
    data = b"".join(p for p, _ in pieces)
    with pytest.raises(BlendFormatError):
        b"".join(decode_layout(lay.params(), iter([data[:-3]])))
    with pytest.raises(BlendFormatError):
        b"".join(decode_layout(lay.params(), iter([data + b"x"])))
    with pytest.raises(BlendFormatError):
        b"".join(decode_layout({**lay.params(), "v": 99}, iter([data])))


# --- property tests on synthetic block streams ---------------------------------------------

@st.composite
def streams(draw: st.DrawFn) -> bytes:
    psize = draw(st.sampled_from([4, 8]))
    le = draw(st.booleans())
    large = psize == 8 and draw(st.booleans())
    n = draw(st.integers(1, 12))
    base = draw(st.integers(1 << 20, 1 << 30)) * 16
    addrs = [base + draw(st.integers(0, 1 << 16)) * 8 for _ in range(n)]  # duplicates allowed
    pointer = st.one_of(st.sampled_from([0, *addrs]), st.integers(0, 40),
                        st.integers(0, (1 << (8 * psize)) - 1))
    blocks = []
    for i in range(n):
        code = draw(st.sampled_from([b"OB\0\0", b"ME\0\0", b"DATA", b"DATA"]))
        if le and draw(st.booleans()):
            count = draw(st.integers(1, 3))
            body = b"".join(thing(psize, draw(st.integers(-2**31, 2**31 - 1)), draw(pointer),
                                  draw(pointer)) for _ in range(count))
            blocks.append((code, addrs[i], 2, count, body))
        else:
            body = draw(st.binary(max_size=300))
            blocks.append((code, addrs[i], draw(st.integers(0, 5)), draw(st.integers(0, 4)),
                           body))
    return make_blend(blocks, psize=psize, le=le, large=large,
                      with_dna=draw(st.booleans()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_any_stream_round_trips(data: bytes) -> None:
    lay, _ = roundtrip(data)
    assert lay.blocks >= 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.data())
def test_damaged_stream_raises_or_round_trips(data: bytes, draw: st.DataObject) -> None:
    """Truncation or a flipped byte either fails to parse or still rebuilds exactly."""
    cut = draw.draw(st.integers(0, len(data) - 1))
    flip = draw.draw(st.integers(0, len(data) - 1))
    for bad in (data[:cut], data[:flip] + bytes([data[flip] ^ 0xFF]) + data[flip + 1:]):
        try:
            lay, pieces = layout_pieces(bad)
            chunks: Iterator[bytes] = (p for p, _ in pieces)
        except BlendFormatError:
            continue
        assert b"".join(decode_layout(lay.params(), chunks)) == bad


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 3 << 20), cuts=st.lists(st.tuples(st.integers(0, 3 << 20),
                                                             st.integers(0, 1 << 20)),
                                                   max_size=30))
def test_file_view_reads_what_slicing_the_bytes_gives(tmp_path_factory: pytest.TempPathFactory,
                                                      size: int,
                                                      cuts: list[tuple[int, int]]) -> None:
    """The read-ahead window gives the same bytes as slicing the file's bytes, for slices
    inside, across and past the window, forwards and backwards."""
    from vstudio.store.blendfile import FileView

    data = bytes((i * 7 + i // 251) & 0xFF for i in range(size))
    path = tmp_path_factory.mktemp("view") / "f"
    path.write_bytes(data)
    with open(path, "rb") as f:
        view = FileView(f)
        assert len(view) == size
        for start, n in cuts:
            assert view[start:start + n] == data[start:start + n]


def test_file_view_says_when_the_file_shrank_under_it(tmp_path: Path) -> None:
    from vstudio.store.blendfile import FileView

    path = tmp_path / "f"
    path.write_bytes(bytes(3 << 20))
    with open(path, "rb") as f:
        view = FileView(f)
        assert view[10:20] == bytes(10)
        with open(path, "r+b") as g:
            g.truncate(1 << 20)
        with pytest.raises(BlendFormatError, match="changed while"):
            view[2 << 20:(2 << 20) + 100]
