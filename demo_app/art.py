"""The demo's generated pictures: avatars and the brand mark are drawn with libvips at first
start, so no binary media is committed. No side effects on import (tests use these too)."""

from __future__ import annotations

from pathlib import Path


def avatar_png(initial: str, top: tuple[int, int, int], bottom: tuple[int, int, int],
               size: int = 256) -> bytes:
    """A diagonal gradient with the initial in white: generated, so no binary is committed."""
    import pyvips

    xyz = pyvips.Image.xyz(size, size)
    t = (xyz[0] + xyz[1]) / (2 * (size - 1))
    bands = [t * (b - a) + a for a, b in zip(top, bottom, strict=True)]
    img = bands[0].bandjoin(bands[1:]).cast("uchar")
    try:
        text = pyvips.Image.text(initial, dpi=900, font="sans bold")
        mask = text.embed((size - text.width) // 2, (size - text.height) // 2, size, size)
        img = mask.ifthenelse([255, 255, 255], img, blend=True)
    except pyvips.Error:  # no fonts here: the gradient alone will do
        pass
    data: bytes = img.pngsave_buffer()
    return data


def make_mark(path: Path) -> None:
    """Cohort's mark: a white disc on a translucent blue square (generated, not committed)."""
    import pyvips

    size = 96
    xyz = pyvips.Image.xyz(size, size) - size / 2
    disc = ((xyz[0] ** 2 + xyz[1] ** 2) ** 0.5 < size / 3).ifthenelse(255, 0)
    alpha = (disc > 0).ifthenelse(255, 150)
    rgb = disc.bandjoin([disc, (disc > 0).ifthenelse(255, 180)])
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb.bandjoin(alpha).cast("uchar").pngsave(str(path))
