#!/usr/bin/env python
"""Page-render benchmark: a page of 50 pictures, one by one and batched, against a bare
Jinja template of the same markup.

Run from the repository root::

    .venv/bin/python bench/render.py              # 3 runs of 3 s per contender
    .venv/bin/python bench/render.py --quick      # 1 run of 1 s

This is a benchmark, not a test: it never asserts a number. The test suite checks the
behaviour (tests/web/test_batch_views.py: one query per page, the same markup).

Setup, untimed: a SQLite database with 50 ready photo assets, each with three ready WebP
variants (s, m, l) on ``LocalStorage``, and ``AllowAll``. Each contender renders the page
``<picture>`` by ``<picture>``, ``variants=[("s", "(max-width: 400px)"), "m", "l"]``:

* ``bare Jinja`` (the baseline): a plain Jinja template with the same markup (three
  ``<source>`` and an ``<img>``) and static URLs already in hand: no database, no signing,
  no Authorizer. What any page costs before it knows anything about media.
* ``one by one``: ``await media.html.picture_tag(profile, asset, ...)`` per picture, with the
  asset rows already loaded (each call reads its variants and asks the Authorizer).
* ``batched``: ``await media.html.picture_tags(profile, assets, ...)``: one query for the
  page's variants, one Authorizer decision per profile, only the shown variants' URLs
  signed (each a sealed, expiring token: AES-GCM). The page rendered again, as a feed is
  for its next visitor: signed URLs and settled pictures' markup are reused while the
  URLs have most of their life left (rindle/delivery/url_cache.py).
* ``batched, cold``: the same with both caches emptied before every page, so every URL is
  sealed and every picture built: what the first visitor's page costs.

Reported: pictures per second (median of the runs) and the ratio to the baseline. Targets
(issue 15): batched >= 10,000 pictures/s and >= 0.3x the bare template.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jinja2 import Environment  # noqa: E402

from rindle import AllowAll, LocalStorage, Rindle  # noqa: E402
from rindle.delivery.url_cache import _per_runtime  # noqa: E402
from rindle.model import migrate  # noqa: E402
from tests.support.pages import Photo, ready_photos  # noqa: E402

PAGE = 50
VARIANTS: list[Any] = [("s", "(max-width: 400px)"), "m", "l"]


BARE = Environment(autoescape=True).from_string(
    '<picture class="rindle-picture" data-rindle-asset="{{ id }}" data-state="ready">'
    '{% for url, media in sources %}<source type="image/webp" srcset="{{ url }}"'
    '{% if media %} media="{{ media }}"{% endif %}>{% endfor %}'
    '<img src="{{ img }}" alt="{{ alt }}" loading="lazy" decoding="async" width="100" '
    'height="80"></picture>')


async def _world(root: Path) -> tuple[Rindle, list[Any]]:
    url = f"sqlite:///{root / 'render.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    media = Rindle(database_url=url, storages={"local": LocalStorage(root=root / "files")},
                   profiles=[Photo], secret_keys=["render-bench-" + "x" * 32],
                   authorizer=AllowAll())
    await media.connect(start_queue=False)
    assets = await ready_photos(media, PAGE)
    return media, assets


async def _rate(render: Any, seconds: float) -> float:
    await render()  # warm: templates compiled, keys derived
    started, pages = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        await render()
        pages += 1
    return pages * PAGE / (time.perf_counter() - started)


async def main(runs: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        media, assets = await _world(Path(tmp))
        try:
            html = media.html
            static = [(a.id, [(f"/static/{a.id}-{n}.webp", m) for n, m in
                              (("s", "(max-width: 400px)"), ("m", None), ("l", None))])
                      for a in assets]

            async def bare() -> None:
                for aid, sources in static:
                    BARE.render(id=aid, sources=sources, img=sources[-1][0], alt="A photo")

            async def one_by_one() -> None:
                for a in assets:
                    await html.picture_tag(Photo, a, variants=VARIANTS, alt="A photo")

            async def batched() -> None:
                await html.picture_tags(Photo, assets, variants=VARIANTS, alt="A photo")

            async def cold() -> None:
                _per_runtime.pop(media, None)  # both caches: URLs and pictures
                await html.picture_tags(Photo, assets, variants=VARIANTS, alt="A photo")

            contenders = {"bare Jinja (baseline)": bare, "Rindle one by one": one_by_one,
                          "Rindle batched (picture_tags)": batched,
                          "Rindle batched, cold caches": cold}
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            for run in range(runs):
                for name, render in contenders.items():
                    rates[name].append(await _rate(render, seconds))
                print(f"run {run + 1} of {runs} done", file=sys.stderr)
        finally:
            await media.disconnect()
    base = statistics.median(rates["bare Jinja (baseline)"])
    print(f"page of {PAGE} pictures, 3 signed variants each; SQLite, LocalStorage, AllowAll; "
          f"{runs} run(s) of {seconds:g} s\n")
    print(f"  {'contender':34} {'pictures/s':>12} {'vs bare':>9}")
    print("  " + "-" * 57)
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:34} {rate:12,.0f} {rate / base:8.2f}x")
    batched_rate = statistics.median(rates["Rindle batched (picture_tags)"])
    print(f"\ntargets: batched >= 10,000 pictures/s: {batched_rate:,.0f} "
          f"{'met' if batched_rate >= 10_000 else 'NOT met'} | >= 0.3x bare: "
          f"{batched_rate / base:.2f}x {'met' if batched_rate / base >= 0.3 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 1.0
    asyncio.run(main(args.runs, args.seconds))
