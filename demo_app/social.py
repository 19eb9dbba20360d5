"""Cohort's own processor: a post's share card, the hero cropped to 1200x630 with Cohort's
mark in a corner. It reads the mark from ``VAR/brand/mark.png``, a brand file an operator
manages: when the file is missing the card fails with a clear error, and once it is back the
operator retries the variant from the console (``/admin/jobs``). A plug-in as
docs/guides/plugins.md describes: inputs in, an ``Output`` back; Rindle does the I/O."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rindle import Output, Variant
from rindle.errors import RindleError
from rindle.processing.processor import Context, Source


class ShareCard:
    """``kind="share_card"`` variants: ``variant.width`` x ``variant.height``, JPEG."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    async def process(self, source: Source, variant: Variant, context: Context) -> Output:
        if not self.mark.is_file():
            # Not retryable: another attempt can't help until an operator puts it back.
            # The file's name, not its path: the message is shown in the console.
            raise RindleError(f"the brand mark ({self.mark.parent.name}/{self.mark.name} in "
                              "the demo's var directory) is missing; restore it, then retry "
                              "the variant", code="brand_mark_missing")
        src, out = str(await source.path()), context.scratch / "share-card.jpg"
        width, height = variant.width or 1200, variant.height or 630

        def render() -> tuple[int, int]:  # libvips blocks: a thread, not the event loop
            import pyvips

            card = pyvips.Image.thumbnail(src, width, height=height, crop="attention")
            if card.hasalpha():
                card = card.flatten(background=[255, 255, 255])
            mark = pyvips.Image.new_from_file(str(self.mark))
            card = card.composite2(mark, "over", x=card.width - mark.width - 24,
                                   y=card.height - mark.height - 24)
            card.jpegsave(str(out), Q=variant.quality or 82, strip=True)
            return card.width, card.height

        w, h = await asyncio.to_thread(render)
        return Output(path=out, content_type="image/jpeg", width=w, height=h)
