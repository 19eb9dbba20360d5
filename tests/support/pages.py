"""A page's worth of ready photos, written as rows (no image work): what the batch-render
test and bench/render.py both render."""

from __future__ import annotations

from typing import Any

from rindle import Profile, Rindle, Variant


class Photo(Profile):
    """Three WebP variants, as a feed shows them."""

    name = "photo"
    storage = "local"
    allow_mime = ["image/png"]
    variants = {"s": Variant(width=100), "m": Variant(width=400),  # noqa: RUF012
                "l": Variant(width=800)}


_ASSET_PATH = ["staged", "validating", "analyzing", "promoting", "available", "processing",
               "ready"]
_VARIANT_PATH = (("planned", "queued"), ("queued", "processing"), ("processing", "ready"))


async def ready_photos(media: Rindle, n: int, *, still_planned_every: int | None = None
                       ) -> list[Any]:
    """``n`` ready ``Photo`` assets with their three variants ready; with
    ``still_planned_every=k``, every k-th asset's ``s`` variant is still planned."""
    assets = []
    for i in range(n):
        a = await media.repo.insert_asset(profile="photo", storage="local",
                                          storage_key=f"photo/{i}.png",
                                          content_type="image/png", width=1000, height=800)
        for x, y in zip(_ASSET_PATH, _ASSET_PATH[1:], strict=False):
            a = await media.repo.transition_asset(a.id, x, y)
        await media.repo.plan_variants(a.id, [(name, v.digest, "image")
                                              for name, v in Photo.variants.items()])
        for name in Photo.variants:
            if still_planned_every and i % still_planned_every == still_planned_every - 1 \
                    and name == "s":
                continue
            for x, y in _VARIANT_PATH:
                extra = ({"storage_key": f"photo/{i}-{name}.webp",
                          "content_type": "image/webp", "width": 100, "height": 80,
                          "generated_at": a.created_at} if y == "ready" else {})
                await media.repo.transition_variant(a.id, name, x, y, **extra)
        assets.append(await media.asset(a.id))
    return assets
