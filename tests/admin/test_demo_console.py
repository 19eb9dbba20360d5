"""The demo mounts the console at /admin behind its own Authorizer: refused without the demo
operator's cookie or header, open with either, while the rest of the demo stays open."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.test_demo import _start_demo


def test_the_demo_console_refuses_a_non_admin_and_lets_the_operator_in(tmp_path: Path) -> None:
    proc, base = _start_demo(tmp_path, {})
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            refused = c.get("/admin/")
            assert refused.status_code == 403 and "not allowed" in refused.text
            page = c.get("/")
            assert 'href="/demo/operator"' in page.text and "X-Demo-Admin: 1" in page.text
            became = c.get("/demo/operator", follow_redirects=True)
            assert became.status_code == 200 and "<h1>Overview</h1>" in became.text
            assert c.get("/admin/assets").status_code == 200
            assert 'href="/demo/operator/off"' in c.get("/").text
            c.get("/demo/operator/off")
            assert c.get("/admin/").status_code == 403
            # The header stands in for the cookie (curl), and uploads stay open to anyone.
            assert c.get("/admin/jobs", headers={"x-demo-admin": "1"}).status_code == 200
            assert c.get("/rindle/profiles/avatar/upload-options").status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
