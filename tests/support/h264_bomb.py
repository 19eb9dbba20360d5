"""An H.264 MP4 whose sequence parameter set claims a picture far larger than its frames:
the 'decompression bomb' of video. A small clip's SPS (in the avcC box) is rewritten with
new macroblock counts; everything else stays as encoded. Baseline profile only (its SPS has
no chroma, bit-depth or scaling fields before the size)."""

from __future__ import annotations

from pathlib import Path


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:  # Exp-Golomb
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
        return (1 << zeros) - 1 + self.u(zeros)


class _Writer:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        value += 1
        self.u(value.bit_length() - 1, 0)
        self.u(value.bit_length(), value)

    def bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


def _unescape(nal: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in nal:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _escape(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _resized_sps(nal: bytes, width_mbs: int, height_mbs: int) -> bytes:
    rbsp = _unescape(nal[1:])
    r, w = _Reader(rbsp), _Writer()
    profile = r.u(8)
    if profile not in (66, 77, 88):
        raise ValueError(f"profile {profile}: encode the clip with -profile:v baseline")
    w.u(8, profile)
    w.u(8, r.u(8))  # constraint flags
    w.u(8, r.u(8))  # level
    w.ue(r.ue())  # seq_parameter_set_id
    w.ue(r.ue())  # log2_max_frame_num_minus4
    poc = r.ue()
    w.ue(poc)
    if poc == 0:
        w.ue(r.ue())
    elif poc != 2:
        raise ValueError(f"pic_order_cnt_type {poc} is not handled")
    w.ue(r.ue())  # max_num_ref_frames
    w.u(1, r.u(1))  # gaps_in_frame_num_value_allowed_flag
    r.ue()
    r.ue()
    w.ue(width_mbs - 1)
    w.ue(height_mbs - 1)
    last = len(rbsp) * 8 - 1
    while (rbsp[last >> 3] >> (7 - (last & 7))) & 1 == 0:  # the rbsp stop bit
        last -= 1
    while r.pos < last:
        w.u(1, r.u(1))
    w.u(1, 1)
    return nal[:1] + _escape(w.bytes())


def claim_size(source: Path, target: Path, width: int, height: int) -> Path:
    """``source`` (a baseline H.264 MP4 with its index first or last) rewritten to claim
    ``width`` x ``height`` (multiples of 16) in its SPS; the box sizes around it follow."""
    data = bytearray(source.read_bytes())
    at = data.find(b"avcC")
    sps_at = at + 4 + 5  # version, profile, compatibility, level, length size
    if data[sps_at] & 0x1F != 1:
        raise ValueError("expected one SPS")
    size = int.from_bytes(data[sps_at + 1:sps_at + 3], "big")
    sps = bytes(data[sps_at + 3:sps_at + 3 + size])
    new = _resized_sps(sps, width // 16, height // 16)
    delta = len(new) - size
    data[sps_at + 1:sps_at + 3] = len(new).to_bytes(2, "big")
    data[sps_at + 3:sps_at + 3 + size] = new
    where = at
    for box in (b"avcC", b"avc1", b"stsd", b"stbl", b"minf", b"mdia", b"trak", b"moov"):
        where = data.rfind(box, 0, where + 4)
        old = int.from_bytes(data[where - 4:where], "big")
        data[where - 4:where] = (old + delta).to_bytes(4, "big")
    moov = data.find(b"moov")
    mdat = data.find(b"mdat")
    if moov < mdat:  # the chunk offsets point past the grown moov
        for box in (b"stco",):
            i = data.find(box)
            count = int.from_bytes(data[i + 8:i + 12], "big")
            for k in range(count):
                p = i + 12 + 4 * k
                data[p:p + 4] = (int.from_bytes(data[p:p + 4], "big") + delta).to_bytes(4, "big")
    target.write_bytes(bytes(data))
    return target
