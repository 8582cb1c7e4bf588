"""Media steps around rendered frames: video encodes, an edit's sound mixdown, blank frames.

Videos other files read are lossless (``libx264rgb -qp 0``: the exact RGB of every frame at
its exact size, odd sizes included; in RenderChan projects ``libx264 -qp 0`` in yuv444p,
what RenderChan's Blender writes); delivery encodes are H.264 at ``crf`` (yuv420p, or
yuv444p when the size is odd, never cropped). Sound goes in as AAC, as RenderChan does.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

from vstudio.render.runner import RenderFailed

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aac", ".m4a", ".opus", ".aiff")

_MIXDOWN = r"""
import bpy
sc = bpy.context.scene
sc.frame_start, sc.frame_end = %d, %d
sc.render.ffmpeg.audio_mixrate = %d
bpy.ops.sound.mixdown(filepath=%r, check_existing=False, container="WAV", codec="PCM",
                      format="S16")
"""


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if not exe:
        raise RenderFailed(f"{name} is not installed (apt-get install {name})")
    return exe


def mixdown(blend: Path, start: int, end: int, rate: int, out: Path) -> Path:
    """The sound of ``blend``'s scene for frames start..end as a WAV file, through Blender."""
    blender = os.environ.get("VSTUDIO_BLENDER") or _tool("blender")
    proc = subprocess.run(
        [blender, "-b", str(blend), "-Y", "--python-exit-code", "1", "--python-expr",
         _MIXDOWN % (start, end, rate, str(out))],
        capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-5:])
        raise RenderFailed(f"{blend.name}: mixing down its sound failed: {tail}")
    return out


def encode(frames: list[Path], fps: float, out: Path, codec: str = "lossless",
           crf: int | None = None, audio: Path | None = None, audio_rate: int = 48000) -> Path:
    """Frames in order -> one video at ``out`` (its suffix picks the container)."""
    ffmpeg = _tool("ffmpeg")
    seq = out.parent / f".{out.name}.seq"
    seq.mkdir(parents=True, exist_ok=True)
    try:
        for i, f in enumerate(frames):
            os.symlink(os.path.abspath(f), seq / f"{i:06d}.png")
        argv = [ffmpeg, "-y", "-loglevel", "error", "-framerate", f"{fps:g}",
                "-i", str(seq / "%06d.png")]
        if audio is not None:
            argv += ["-i", str(audio)]
        if codec == "lossless":
            argv += ["-c:v", "libx264rgb", "-qp", "0", "-preset", "veryfast", "-pix_fmt", "rgb24"]
        elif codec == "lossless-yuv":  # Blender's lossless H.264 (RenderChan's videos)
            argv += ["-c:v", "libx264", "-qp", "0", "-preset", "veryfast", "-pix_fmt", "yuv444p"]
        else:
            w, h = png_size(frames[0]) if frames else (2, 2)
            pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
            argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf or 20),
                     "-pix_fmt", pix]
        if audio is not None:
            # silence pads short sound to the video's length; -shortest cuts long sound
            argv += ["-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "192k",
                     "-ar", str(audio_rate), "-af", "apad", "-shortest"]
        argv.append(str(out))
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace")
    finally:
        shutil.rmtree(seq, ignore_errors=True)
    if proc.returncode != 0 or not out.is_file():
        raise RenderFailed(f"ffmpeg failed to encode {out.name}: {proc.stderr.strip()[-500:]}")
    return out


def png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return 0, 0
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_blank(path: Path) -> bool:
    """True when every pixel of the PNG is zero (fully transparent, or black without
    alpha): what a render of missing inputs gives. Unreadable files are not blank."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, idat, ihdr = 8, [], b""
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if len(ihdr) < 13 or ihdr[12] != 0 or ihdr[9] == 3:  # interlaced or palette: not judged
        return False
    width, height, depth, color = struct.unpack(">IIBB", ihdr[:10])
    stride = (width * _CHANNELS.get(color, 4) * depth + 7) // 8 + 1
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error:
        return False
    if color in (4, 6) and depth == 8:
        return _alpha_zero(raw, width, height, stride, _CHANNELS[color])
    # every filter of all-zero rows gives zero bytes, and only they do: no unfiltering needed
    return all(not any(raw[r * stride + 1:(r + 1) * stride]) for r in range(height))


def _alpha_zero(raw: bytes, width: int, height: int, stride: int, bpp: int) -> bool:
    """Whether every alpha byte is 0. PNG filters predict a byte from the same channel of
    its neighbours, so the alpha channel unfilters alone (renderers dither the colour of
    transparent pixels: only alpha tells emptiness)."""
    prev = [0] * width
    for r in range(height):
        row = raw[r * stride:(r + 1) * stride]
        kind, filt = row[0], row[bpp::bpp]
        if kind == 0:
            cur = list(filt)
        elif kind == 2:
            cur = [(x + b) & 255 for x, b in zip(filt, prev, strict=False)]
        else:
            cur = [0] * width
            left = up_left = 0
            for i, x in enumerate(filt):
                up = prev[i]
                if kind == 1:
                    v = x + left
                elif kind == 3:
                    v = x + ((left + up) >> 1)
                else:
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    v = x + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)
                left, up_left = v & 255, up
                cur[i] = left
        if any(cur):
            return False
        prev = cur
    return True


# RenderChan's extract_alpha (Synfig's -x): the straight colour with its alpha dropped,
# and the alpha as a grey picture; both 8-bit RGB, as Synfig writes them. (swscale drops
# alpha as it is: no blending over black.)
_CHANNEL_FILTERS = {
    "rgb": "[0]format=rgba,format=rgb24",
    "alpha": "[0]format=rgba,alphaextract,format=rgb24",
}


def channel_png(src: Path, channel: str, dest: Path) -> None:
    """Write ``channel`` ("rgb" or "alpha") of the RGBA PNG ``src`` as a PNG at ``dest``."""
    proc = subprocess.run([_tool("ffmpeg"), "-v", "error", "-y", "-i", str(src),
                           "-filter_complex", _CHANNEL_FILTERS[channel], "-frames:v", "1",
                           "-c:v", "png", "-f", "image2", "-update", "1", str(dest)],
                          capture_output=True, text=True, errors="replace")
    if proc.returncode != 0 or not dest.is_file():
        raise RenderFailed(f"extracting the {channel} of {src.name} failed: "
                           f"{proc.stderr.strip()[-300:]}")
