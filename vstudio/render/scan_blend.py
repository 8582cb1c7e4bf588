"""Scanner for .blend files, through blender-asset-tracer 1.x (no Blender process).

BAT's ``trace.deps`` follows linked libraries into their own files; here each file is read
once and only for its own blocks (``blocks2assets`` per block), because the graph scans
every library as a file of its own and caches each result by content. Files are opened
without BAT's ``open_cached`` registry, so nothing stays open after a scan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from vstudio.render.model import SceneInfo, Use
from vstudio.render.scanners import Record, expand_sequence, resolve, scanner

# Block code -> the studio's word for what it points to.
_KINDS = {b"LI": "library", b"IM": "image", b"SO": "sound", b"MC": "movie", b"VF": "font",
          b"CF": "cache", b"ME": "cache", b"OB": "cache", b"VO": "cache", b"LA": "ies"}


# Decoded DNA catalogues by (pointer size, endianness, BLAKE3 of the DNA1 block). Decoding
# the catalogue is ~90% of reading a small .blend, and every file saved by one Blender
# version carries the same catalogue, so a project's files share one decode.
_DNA: dict[tuple[object, ...], tuple[list[Any], dict[bytes, int]]] = {}
_blendfile_class: Any = None


def _blend_file_class() -> Any:
    global _blendfile_class
    if _blendfile_class is None:
        import blake3
        from blender_asset_tracer import blendfile

        class SharedDNABlendFile(blendfile.BlendFile):
            def decode_structs(self, block: Any) -> None:
                data = self.fileobj.read(block.size)
                key = (self.header.pointer_size, self.header.endian,
                       blake3.blake3(data).digest())
                known = _DNA.get(key)
                if known is None:
                    self.fileobj.seek(-block.size, os.SEEK_CUR)
                    super().decode_structs(block)
                    _DNA[key] = (list(self.structs), dict(self.sdna_index_from_id))
                else:  # the structs are read-only descriptions: sharing them is safe
                    self.structs.extend(known[0])
                    self.sdna_index_from_id.update(known[1])

        _blendfile_class = SharedDNABlendFile
    return _blendfile_class


@scanner(".blend", renderer="blender")
def scan_blend(path: Path) -> Iterator[Record]:
    from blender_asset_tracer import trace
    from blender_asset_tracer.trace import blocks2assets

    bfile = _blend_file_class()(path)
    seen: set[tuple[str, str]] = set()  # each file once per kind, however many blocks use it
    try:
        spans = _strip_spans(bfile, path)
        for block in trace.asset_holding_blocks(bfile.blocks):
            for usage in blocks2assets.iter_assets(block):
                use = _use(path, block.code, usage)
                if (use.path, use.kind) in seen:
                    continue
                seen.add((use.path, use.kind))
                if block.code == b"SC" and use.kind == "sequence":
                    use = replace(use, spans=spans.get(use.path))
                yield use
        scene = _scene(bfile)
        if scene is not None:
            yield scene
    finally:
        bfile.close()


def _use(path: Path, code: bytes, usage: object) -> Use:
    asset = usage.asset_path  # type: ignore[attr-defined]
    raw = bytes(asset)
    ref = raw.decode("utf-8", "surrogateescape")
    if ref.startswith("//"):  # relative to the .blend file; Windows users write backslashes
        ref = ref[2:].replace("\\", "/")
    target = resolve(path.parent, ref)
    if code == b"SC":  # a sequencer strip: images, a movie or a sound
        kind = "sequence" if usage.is_sequence else "strip"  # type: ignore[attr-defined]
    else:
        kind = _KINDS.get(code, "file")
        if usage.is_sequence:  # type: ignore[attr-defined]
            kind = "sequence"
    name = usage.block_name.decode("utf-8", "replace")  # type: ignore[attr-defined]
    if code == b"SC":
        name = "sequencer strip"
    elif name[:2].encode() == code:  # ID names start with their block code: "IMwood.png"
        name = name[2:]
    exists = bool(expand_sequence(str(target))) if kind == "sequence" else target.exists()
    return Use(str(target), kind, exists, name)


_SEQ_IMAGE, _SEQ_META, _SEQ_SPEED = 0, 1, 29
_SEQ_REVERSE = 1 << 16  # SEQ_REVERSE_FRAMES
_NUMBER = re.compile(r"^(.*?)(\d+)(\.[^.]*)$")
Span = tuple[int, int, int, int, int]


def _strip_spans(bfile: Any, path: Path) -> dict[str, tuple[Span, ...] | None]:
    """Image strips of the sequencers: first file's path -> spans (``Use.spans``).

    Only plain cases get spans (consecutive numbered files, no speed effect, not reversed,
    not inside a meta strip); for anything else the path maps to None and a render
    reading it waits for the whole sequence, as before.
    """
    from blender_asset_tracer.blendfile import iterators

    out: dict[str, list[Span] | None] = {}
    for scene in bfile.find_blocks_from_code(b"SC"):
        ed = scene.get_pointer(b"ed")
        if ed is None:
            continue
        strips = list(iterators.listbase(ed.get_pointer((b"seqbase", b"first"))))
        retimed = any(int(s.get(b"type")) in (_SEQ_SPEED, _SEQ_META) for s in strips)
        for seq in strips:
            if int(seq.get(b"type")) != _SEQ_IMAGE:
                continue
            key, span = _image_strip(seq, path)
            if key is None:
                continue
            known = out.get(key, [])
            if span is None or retimed or known is None:
                out[key] = None
            else:
                out[key] = [*known, span]
    return {k: (tuple(v) if v is not None else None) for k, v in out.items()}


def _image_strip(seq: Any, path: Path) -> tuple[str | None, Span | None]:
    from blender_asset_tracer.blendfile import iterators

    strip = seq.get_pointer(b"strip")
    elems = strip.get_pointer(b"stripdata") if strip is not None else None
    if elems is None:
        return None, None
    folder = strip.get(b"dir", as_str=True)
    names = [e.get(b"name", as_str=True) for e in iterators.dynamic_array(elems)]
    if not names:
        return None, None
    ref = folder + names[0]
    if ref.startswith("//"):
        ref = ref[2:].replace("\\", "/")
    key = str(resolve(path.parent, ref))
    parsed = [_NUMBER.match(n) for n in names]
    if any(m is None for m in parsed) or int(seq.get(b"flag")) & _SEQ_REVERSE:
        return key, None
    numbers = [int(m[2]) for m in parsed if m is not None]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        return key, None
    start = round(float(seq.get(b"start")))
    count = int(seq.get(b"len")) or len(names)
    first = start + round(float(seq.get(b"startofs")))
    last = start + count - 1 - round(float(seq.get(b"endofs")))
    return key, (start, first, last, numbers[0], min(count, len(names)))


def _scene(bfile: object) -> SceneInfo | None:
    find = bfile.find_blocks_from_code  # type: ignore[attr-defined]
    scene = None
    glob_blocks = find(b"GLOB")
    if glob_blocks:
        scene = glob_blocks[0].get_pointer(b"curscene")
    if scene is None:
        scenes = find(b"SC")
        if not scenes:
            return None
        scene = scenes[0]

    def r(name: bytes) -> object:
        return scene.get((b"r", name))

    base = float(r(b"frs_sec_base") or 1.0)  # type: ignore[arg-type]
    return SceneInfo(
        renderer="blender", start=int(r(b"sfra")), end=int(r(b"efra")),  # type: ignore[call-overload]
        fps=round(float(r(b"frs_sec")) / (base or 1.0), 3),  # type: ignore[arg-type]
        width=int(r(b"xsch")), height=int(r(b"ysch")),  # type: ignore[call-overload]
        percent=int(r(b"size")),  # type: ignore[call-overload]
        engine=str(scene.get((b"r", b"engine"), as_str=True)))
