"""No log line carries a credential: a real storage failure over HTTP, and the filter itself."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import shutil
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import rindle
from rindle import LocalStorage, Rindle
from rindle.logs import FILTER, REDACTED, RedactTokens, get_logger, install, redact
from rindle.web import log_redaction
from tests.conftest import SECRET, ImageProfile, LiveServer, MakeMedia
from tests.support.images import png

TOKEN = "gAAAAABm7Qx1c2VyLXRva2VuLWZvci10ZXN0cy0wMTIzNDU2Nzg5YWJjZGVm-_Q=="
PRESIGNED = ("https://bucket.s3.eu-west-1.amazonaws.com/image/a1/b2.png?X-Amz-Algorithm="
             "AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Feu-west-1%2Fs3"
             "&X-Amz-Signature=0123456789abcdef0123456789abcdef&X-Amz-Security-Token=FwoGZX"
             "&X-Amz-Expires=900")
SECRETS_IN_PRESIGNED = ("AKIAEXAMPLE", "0123456789abcdef0123456789abcdef", "FwoGZX")


def needles(token: str) -> set[str]:
    """The token as handed out, decoded, re-encoded (servers quote paths) and unpadded."""
    plain = unquote(token)
    return {token, plain, quote(plain, safe=""), plain.rstrip("=")}


def leaks(record: logging.LogRecord, secrets: set[str] | tuple[str, ...]) -> list[str]:
    """Every place of ``record`` a handler could write that still holds one of ``secrets``."""
    places = {
        "message": record.getMessage(),
        "exc_text": record.exc_text or "",
        "stack_info": record.stack_info or "",
        "formatted": logging.Formatter("%(message)s").format(record),
        "args": repr(record.args) + " ".join(map(str, _arg_values(record))),
    }
    return [f"{record.name}.{where}" for where, text in places.items()
            for secret in secrets if secret in text]


def _arg_values(record: logging.LogRecord) -> list[object]:
    args = record.args
    return list(args.values()) if isinstance(args, dict) else list(args or ())


def record(msg: object, *args: object, exc_info: object = None,
           name: str = "rindle.test") -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args or None,
                            exc_info)  # type: ignore[arg-type]
    assert RedactTokens().filter(rec) is True
    return rec


# -- over HTTP: a Local PUT whose write fails ------------------------------------------------


def app_for(media: Rindle) -> Starlette:
    return Starlette(routes=[Mount("/rindle", app=media.router)], lifespan=media.lifespan)


def break_local_writes(root: Path) -> None:
    # Root ignores permission bits, so make the temp directory LocalStorage writes into a file.
    tmp = root / ".rindle-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(b"not a directory")


async def test_a_failed_local_put_logs_no_token(make_media: MakeMedia, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # The test's own HTTP client logs the URLs it requests; it is not a Rindle or server logger.
    caplog.set_level(logging.WARNING, logger="httpx")
    caplog.set_level(logging.WARNING, logger="httpcore")
    caplog.set_level(logging.DEBUG)  # last: set_level also sets the capturing handler's level
    root = tmp_path / "uploads"
    media = make_media(storages={"local": LocalStorage(root=root)})
    data = png(40, 30)
    async with LiveServer(app_for(media), access_log=True) as srv, \
            httpx.AsyncClient(base_url=srv.url) as client:
        r = await client.post("/rindle/uploads", json={
            "profile": "image", "filename": "me.png", "content_type": "image/png",
            "byte_size": len(data)}, headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text
        upload = r.json()["upload"]
        break_local_writes(root)
        put = await client.put(upload["url"], content=data, headers=upload["headers"])
        assert put.status_code >= 500, put.text
        assert put.headers["content-type"].startswith("application/json")
        assert isinstance(put.json()["error"], dict)

    token = urlsplit(upload["url"]).path.rsplit("/", 1)[1]
    assert len(token) >= 16
    names = {r.name for r in caplog.records}
    assert "uvicorn.access" in names
    assert any(r.name.startswith("rindle") and r.levelno >= logging.ERROR
               for r in caplog.records), "the storage failure was not logged"
    found = [where for rec in caplog.records for where in leaks(rec, needles(token))]
    assert found == []


# -- the filter --------------------------------------------------------------------------


def test_an_exception_quoting_a_presigned_url_is_redacted() -> None:
    try:
        raise OSError(f"PUT {PRESIGNED} failed: connection reset")
    except OSError as exc:
        rec = record("upload to S3 failed: %s", exc, exc_info=sys.exc_info())
    assert leaks(rec, SECRETS_IN_PRESIGNED) == []
    assert rec.exc_text is not None and "OSError" in rec.exc_text
    assert "X-Amz-Signature=" + REDACTED in rec.exc_text
    assert "X-Amz-Expires=900" in rec.getMessage()  # only credentials go, not the whole URL


def test_percent_s_args_with_a_files_url_are_redacted() -> None:
    rec = record("%s %s -> %d", "GET", f"/rindle/files/{TOKEN}?download=1", 404)
    assert rec.getMessage() == f"GET /rindle/files/{REDACTED}?download=1 -> 404"
    assert leaks(rec, needles(TOKEN)) == []


def test_token_routes_and_query_parameters() -> None:
    assert redact(f"/rindle/local/{TOKEN}") == f"/rindle/local/{REDACTED}"
    assert redact(f"/rindle/tus/avatar/{TOKEN}") == f"/rindle/tus/avatar/{REDACTED}"
    assert redact(f"/rindle/local/{quote(TOKEN, safe='')}") == f"/rindle/local/{REDACTED}"
    assert redact("/rindle/live/events?asset=a1&token=abc.DEF-123") == \
        f"/rindle/live/events?asset=a1&token={REDACTED}"
    gcs = "https://storage.googleapis.com/upload/storage/v1/b/x/o?uploadType=resumable"
    assert redact(f"{gcs}&upload_id=ADPycdu") == f"{gcs}&upload_id={REDACTED}"
    assert redact("?GoogleAccessId=svc@p.iam&Signature=abc%2Bdef") == \
        f"?GoogleAccessId={REDACTED}&Signature={REDACTED}"
    assert redact("postgresql://rindle:hunter2@db/rindle") == \
        f"postgresql://rindle:{REDACTED}@db/rindle"
    # Neither short path segments nor other routes are touched.
    assert redact("/rindle/uploads/0123456789abcdef0123/complete") == \
        "/rindle/uploads/0123456789abcdef0123/complete"
    assert redact("/rindle/tus/avatar/") == "/rindle/tus/avatar/"


def test_a_token_query_parameter_in_args_is_redacted() -> None:
    rec = record("subscribe %s", f"/rindle/live/sse?token={TOKEN}")
    assert rec.getMessage() == f"subscribe /rindle/live/sse?token={REDACTED}"
    assert leaks(rec, needles(TOKEN)) == []


def test_access_records_keep_their_args_shape() -> None:
    # uvicorn's AccessFormatter unpacks exactly these five arguments.
    from uvicorn.logging import AccessFormatter

    rec = record('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "PUT", f"/rindle/local/{TOKEN}",
                 "1.1", 502, name="uvicorn.access")
    assert isinstance(rec.args, tuple) and len(rec.args) == 5
    line = AccessFormatter("%(request_line)s %(status_code)s", use_colors=False).format(rec)
    assert line == f"PUT /rindle/local/{REDACTED} HTTP/1.1 502 Bad Gateway"


def test_clean_records_are_left_alone() -> None:
    exc = ValueError("boom")
    rec = record("asset %s failed: %r (%d tries)", "a1", exc, 3)
    assert rec.msg == "asset %s failed: %r (%d tries)"
    assert rec.args == ("a1", exc, 3)


def test_the_filter_never_raises() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no")

        __repr__ = __str__

    broken = record(f"/rindle/files/{TOKEN} %d", "not a number")
    assert TOKEN not in broken.getMessage() and broken.args == ()
    assert TOKEN not in record("value %s", Unprintable()).getMessage()
    stacked = logging.LogRecord("rindle.test", logging.INFO, __file__, 1, "x", None, None,
                                sinfo=f"Stack:\n  GET /rindle/files/{TOKEN}")
    RedactTokens().filter(stacked)
    assert stacked.stack_info is not None and TOKEN not in stacked.stack_info


# -- where the filter is attached --------------------------------------------------------


def _rindle_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(rindle.__path__, "rindle."):
        if ".migrations" in info.name:
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency that is not installed
            continue
        names.append(info.name)
    return names


def test_every_rindle_module_logger_carries_the_filter() -> None:
    loggers = {name: value for name in _rindle_modules()
               for value in vars(sys.modules[name]).values() if isinstance(value, logging.Logger)}
    assert len(loggers) >= 10
    missing = [name for name, logger in loggers.items()
               if logger.name.startswith("rindle") and FILTER not in logger.filters]
    assert missing == []


def test_get_logger_attaches_once() -> None:
    logger = get_logger("rindle.test.once")
    assert get_logger("rindle.test.once") is logger
    assert logger.filters.count(FILTER) == 1


def test_rindle_construction_installs_it_on_the_servers_loggers(sqlite_url: str,
                                                              tmp_path: Path) -> None:
    access = logging.getLogger("uvicorn.access")
    access.removeFilter(FILTER)
    Rindle(database_url=sqlite_url, storages={"local": LocalStorage(root=tmp_path)},
           profiles=[ImageProfile], secret_keys=[SECRET])
    assert FILTER in access.filters
    install()
    assert access.filters.count(FILTER) == 1


def test_the_old_module_still_exports_the_filter() -> None:
    assert log_redaction.redact is redact
    assert log_redaction.RedactTokens is RedactTokens
    assert log_redaction.install is install
