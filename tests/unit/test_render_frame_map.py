"""Which frames of another file's render a chunk reads (frame-by-frame dependencies)."""

from __future__ import annotations

from vstudio.render.layout import frame_number
from vstudio.render.model import ScanResult, Use, spans_of


def test_strip_spans_map_edit_frames_to_shot_frames() -> None:
    # a strip of shot frames 1-4 placed at edit frame 5, trimmed by one frame at each end
    use = Use("/p/render/s1.blend.png/0001.png", "sequence", True, "strip",
              ((5, 6, 7, 1, 4),))
    assert use.frames_for([1, 2, 3, 4]) == set()  # before the strip: reads nothing of it
    assert use.frames_for([5, 6]) == {2}  # frame 5 is trimmed away
    assert use.frames_for([7, 8, 9]) == {3}
    # a strip held past its last element shows the last frame
    held = Use("/p/x/0001.png", "sequence", True, "", ((1, 1, 10, 1, 4),))
    assert held.frames_for([9, 10]) == {4}
    # unknown placement: the caller must wait for the whole render
    assert Use("/p/x/0001.png", "sequence", True).frames_for([1]) is None


def test_spans_survive_json_and_reject_garbage() -> None:
    use = Use("/p/a/0001.png", "sequence", False, "strip", ((1, 1, 4, 1, 4), (9, 9, 9, 3, 1)))
    back = ScanResult.from_json(ScanResult([use]).to_json()).uses[0]
    assert back == use
    assert spans_of(None) is None
    assert spans_of([[1, 2, 3]]) is None  # wrong arity
    assert spans_of([[1, 1, 1, 1, 0]]) is None  # an empty strip
    assert spans_of([["a", 1, 1, 1, 1]]) is None


def test_a_single_rendered_frame_is_one_frame() -> None:
    assert frame_number("/p/render/title.sif.png/0003.png") == 3
    assert frame_number("/p/render/s.blend.png/file.00012.png") == 12
    assert frame_number("/p/render/title.sif.mp4") is None
