"""The relay's file writer with page_cache: direct (O_DIRECT), on a real filesystem.

What the modes must keep: the file holds exactly the stream's bytes at their offsets, whether
they lie on the 4 KiB grid in their buffer (written straight from it) or not (staged); the tail
is padded then cut back; a resumed file keeps its prefix; a filesystem that refuses O_DIRECT gets
the drop-behind writer; a failed tail write fails the file instead of publishing it. Whole
broadcasts in each mode: tests/unit/test_weights_relay.py.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
from pathlib import Path

import pytest

from ansible_collections.wideep.gb200.plugins.module_utils import _relay as relay
from ansible_collections.wideep.gb200.plugins.module_utils import _weights as weights


def _direct_ok(directory: Path) -> bool:
    try:
        fd = os.open(directory / ".probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    os.close(fd)
    os.unlink(directory / ".probe")
    return True


def _segment(data: bytes, start: int = 0) -> weights.Segment:
    entry = weights.FileEntry(path="model-00001-of-00001.safetensors", size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return weights.Segment(entry=entry, start=start, offset=0)


def _feed(writer: relay._FileWriter, data: bytes, pieces: list[int], start: int = 0, aligned_buffers: bool = True) -> None:
    """The stream's bytes [start, len) in pieces, each a frame in its own page-aligned buffer, as
    the relay's writer thread gets them; every frame is let go once the file is written."""
    at = start
    frames = []
    for size in [*pieces, len(data)]:
        size = min(size, len(data) - at)
        if size <= 0:
            break
        buf = mmap.mmap(-1, max(size, 1))
        buf[:size] = data[at : at + size]
        frame = relay._Frame(at, size, buf)
        done = writer.write(frame.view(), at, 0 if aligned_buffers else -1, frame)
        frame.release()  # the writer holds what it has not written yet
        frames.append(frame)
        assert done is not None
        writer.digest.update(data[at + done[0] : at + done[0] + done[1]])
        at += size
    writer.end_write()
    assert all(frame.refs == 0 for frame in frames)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    if not _direct_ok(tmp_path):
        pytest.skip(f"{tmp_path}'s filesystem refuses O_DIRECT")
    return tmp_path


@pytest.mark.parametrize(
    ("size", "pieces", "aligned_buffers"),
    [
        (3 << 20, [1 << 20, 1 << 20], True),  # every byte on the grid: straight from the frames
        (20 << 20, [1 << 20] * 19, True),  # frames gathered into writes of STAGE bytes
        (3 << 20, [1 << 20, 1 << 20], False),  # address unknown: every byte staged
        ((3 << 20) + 1234, [777, 1 << 20, 5000, 4096, 1 << 20], True),  # off the grid, then a tail
        (100, [], True),  # one short tail only
    ],
)
def test_the_file_holds_the_stream_whatever_its_alignment(dest: Path, size: int, pieces: list[int], aligned_buffers: bool) -> None:
    data = os.urandom(size)
    segment = _segment(data)
    writer = relay._FileWriter(str(dest), segment, slot=0, mode="direct")
    assert writer.mode == "direct"
    _feed(writer, data, pieces, aligned_buffers=aligned_buffers)
    assert Path(writer.part).read_bytes() == data  # padded tail cut back
    assert writer.finish() == (True, "")
    assert (dest / segment.entry.path).read_bytes() == data


def test_a_resumed_file_keeps_its_prefix(dest: Path) -> None:
    data = os.urandom((3 << 20) + 999)
    segment = _segment(data, start=weights.CHUNK)
    part = Path(weights.partial_path(str(dest), segment.entry.path))
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: weights.CHUNK + 4321])  # one whole chunk and a bit
    writer = relay._FileWriter(str(dest), segment, slot=0, mode="direct")
    assert (writer.mode, writer.prefix) == ("direct", weights.CHUNK)
    _feed(writer, data, [12345, 1 << 20], start=weights.CHUNK)
    assert writer.finish() == (True, "")
    assert (dest / segment.entry.path).read_bytes() == data


def test_a_filesystem_without_direct_io_gets_the_drop_behind_writer(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def refuse_direct(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", refuse_direct)
    data = os.urandom((2 << 20) + 17)
    writer = relay._FileWriter(str(dest), _segment(data), slot=0, mode="direct")
    assert writer.mode == "drop"
    _feed(writer, data, [1 << 20])
    assert writer.finish() == (True, "")


def test_a_failed_tail_write_fails_the_file_instead_of_publishing_it(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom((1 << 20) + 10)
    segment = _segment(data)
    writer = relay._FileWriter(str(dest), segment, slot=0, mode="direct")
    real_pwrite = os.pwrite

    def full_disk(fd: int, view: bytes, at: int) -> int:
        if at >= 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, view, at)

    monkeypatch.setattr(os, "pwrite", full_disk)
    _feed(writer, data, [1 << 20])
    ok, why = writer.finish()
    assert not ok and "No space left on device" in why
    assert not (dest / segment.entry.path).exists()


def test_the_relay_refuses_an_unknown_page_cache_mode() -> None:
    with pytest.raises(relay.RelayError, match=r"page_cache direct\|drop\|keep"):
        relay.Relay(run_id="r", index=1, chain=[("127.0.0.1", 0)], segments=[], needs=set(), dest="/nowhere", page_cache="sometimes")
