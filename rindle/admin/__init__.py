"""The operator console: server-rendered pages (Jinja + htmx) for status, assets, upload
sessions, jobs and the doctor, with repair actions, behind the Authorizer's ``admin`` action.

``from rindle.admin import console``, then ``Mount("/admin", app=console(media))`` beside
``Mount("/rindle", app=media.router)``. See docs/guides/admin.md.
"""

from .console import console

__all__ = ["console"]
