"""The researchers' web pages and JSON API: `zwgk serve`.

Read-only by construction: the app opens its archive read-only (archive.db), so the
database refuses any write, and a missing or out-of-date archive is refused before
the app exists.

Pages: search with filters, facets and snippets (`/`), a notice with its
metadata, text, attachments, versions and diffs (`/notices/ID`), per-search
downloads (`/search.csv`, `/search.jsonl`) and an Atom feed (`/feed.atom`).
The JSON API lives under `/api/`, described at `/openapi.json`. Everything that
comes from crawled pages reaches the browser escaped (Jinja2 autoescaping), and
archived files are only ever offered as downloads. Every response, errors
included, carries the security headers (one middleware), and feed links are made
from the configured base URL, never from the request's Host header.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi import Path as PathParam
from fastapi import Query as Param
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import Archive, open_archive
from ..models import Document
from ..output.diff import VersionDiff, diff_versions
from ..output.export import csv_lines, jsonl_lines
from ..output.feeds import atom_feed
from ..records import NoSuchVersion, china_time, document_record, shorten
from ..search import SORTS, Hit, Query, QueryError, SearchResult, parse_query

PAGE_SIZE = 20
# Ids are INTEGER columns (32 bits on PostgreSQL): larger ones are refused (422) before they overflow the query.
RowId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
# What a reader sees, in the order a 政务公开 page lists it.
LABELS = {
    "title": "标题", "doc_number": "文号", "index_number": "索引号", "issuer": "发布机构",
    "written_date": "成文日期", "published_at": "发布日期", "disclosure": "公开方式", "doc_type": "文种",
    "topic": "主题分类", "keywords": "关键词", "column": "栏目", "source": "来源",
}
FACET_LABELS = {"source": "来源", "year": "年份", "doc_type": "文种", "issuer": "发布机构"}
FILTER_LABELS = {"source": "来源", "doc_type": "文种", "issuer": "发布机构", "docno": "文号前缀", "year": "年份",
                 "from": "起始日期", "to": "截止日期"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "script-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DOCS_PATH = "/api/docs"
# The API's documentation page is FastAPI's Swagger UI: its script and styles come from a CDN, with one inline script.
DOCS_CSP = ("default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
            "style-src https://cdn.jsdelivr.net; img-src https://fastapi.tiangolo.com data:; connect-src 'self'; "
            "frame-ancestors 'none'")
DEFAULT_BASE_URL = "http://127.0.0.1:8000/"


def security_headers(path: str) -> dict[str, str]:
    """The headers every response to ``path`` carries."""
    return {**SECURITY_HEADERS, "Content-Security-Policy": DOCS_CSP} if path == DOCS_PATH else SECURITY_HEADERS


class SecurityHeaders:
    """ASGI middleware: the security headers on every response the app sends (pages, API, feeds, downloads,
    errors), set as the response starts so streamed downloads get them too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = security_headers(scope["path"])

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_secured)


class SearchRequest:
    """The search a request asks for: the query, its filters, sort order, versions and page."""

    def __init__(self, q: str = "", source: str | None = None, doc_type: str | None = None,
                 issuer: str | None = None, docno: str | None = None, year: str | None = None,
                 date_from: Annotated[str | None, Param(alias="from")] = None,
                 date_to: Annotated[str | None, Param(alias="to")] = None,
                 sort: Annotated[str, Param(pattern="^(" + "|".join(SORTS) + ")$")] = "relevance",
                 all_versions: bool = False, page: Annotated[int, Param(ge=1, le=100_000)] = 1) -> None:
        self.q, self.sort, self.all_versions, self.page = q.strip(), sort, all_versions, page
        self.filters = {"source": source, "doc_type": doc_type, "issuer": issuer, "docno": docno, "year": year,
                        "from": date_from, "to": date_to}
        self.error: str | None = None
        try:
            self.query: Query = parse_query(self.q, **self.filters)
        except QueryError as error:
            self.error, self.query = str(error), Query(None)

    def params(self, **changes: object) -> str:
        """This search's URL parameters, with ``changes`` (None drops a parameter)."""
        values = {"q": self.q, **self.filters, "sort": self.sort if self.sort != "relevance" else None,
                  "all_versions": "true" if self.all_versions else None, **changes}
        return urlencode({key: value for key, value in values.items() if value not in (None, "")})


class SearchOut(BaseModel):
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]]


class VersionOut(BaseModel):
    version: int
    seen_at: str | None
    content_hash: str
    title: str | None


class NoticeOut(BaseModel):
    document_id: int
    url: str
    source: str
    status: str
    versions: list[VersionOut]
    record: dict[str, Any]


class FieldChange(BaseModel):
    name: str
    old: Any
    new: Any


class DiffLine(BaseModel):
    op: str
    text: str


class DiffOut(BaseModel):
    old: int
    new: int
    fields: list[FieldChange]
    lines: list[DiffLine]


def create_app(archive: Archive | None = None, db_url: str | None = None,
               base_url: str = DEFAULT_BASE_URL) -> FastAPI:
    """The app over ``archive``, else over the archive at ``db_url`` opened read-only; ``base_url`` is where
    it is reachable, for the links in feeds."""
    archive = archive or open_archive(db_url, read_only=True)
    site_url = base_url.rstrip("/") + "/"
    app = FastAPI(title="zwgk", summary="Notices of Chinese transport bureaus, every version archived",
                  version="1", docs_url=DOCS_PATH, redoc_url=None)
    app.add_middleware(SecurityHeaders)
    app.state.archive = archive
    templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
    templates.env.globals.update(labels=LABELS, facet_labels=FACET_LABELS, filter_labels=FILTER_LABELS,
                                 is_web_url=is_web_url, china_time=china_time)
    templates.env.filters["shown"] = shorten  # a title or value as shown: within records.MAX_SHOWN_CHARS

    @app.exception_handler(StarletteHTTPException)  # Starlette's too: an unknown path, a method not allowed
    def error_page(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        response = page(request, "error.html", error.status_code, message=error.detail)
        response.headers.update(error.headers or {})  # 405's Allow
        return response

    @app.exception_handler(NoSuchVersion)
    def no_such_version(request: Request, error: NoSuchVersion) -> Response:
        return error_page(request, HTTPException(404, str(error)))

    @app.exception_handler(Exception)
    def internal_error(request: Request, error: Exception) -> Response:
        """Starlette answers this outside every middleware, so the headers are set here too."""
        response = error_page(request, HTTPException(500, "internal error: the archive could not answer"))
        response.headers.update(security_headers(request.url.path))
        return response

    def page(request: Request, name: str, status_code: int = 200, **context: object) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def feed_url(request: Request) -> str:
        """The URL of the feed being served, on ``base_url`` (the Host header is the client's to choose)."""
        query = request.url.query
        return site_url + request.url.path.lstrip("/") + (f"?{query}" if query else "")

    def run_search(search: SearchRequest, limit: int = PAGE_SIZE) -> SearchResult:
        if search.error:
            raise HTTPException(400, search.error)
        return archive.search(search.query, all_versions=search.all_versions, sort=search.sort, limit=limit,
                              offset=(search.page - 1) * limit)

    def notice_or_404(document_id: int) -> Document:
        document = archive.find_document(str(document_id))
        if document is None:
            raise HTTPException(404, f"no archived notice {document_id}")
        return document

    def diff_of(document_id: int, a: int | None, b: int | None) -> tuple[Document, VersionDiff]:
        document = notice_or_404(document_id)
        return document, diff_versions(document, a or None, b or None, context=3)  # 0: the default, as unset

    # Pages

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def search_page(request: Request, search: Annotated[SearchRequest, Depends()]) -> HTMLResponse:
        result = None
        if not search.error:
            result = archive.search(search.query, all_versions=search.all_versions,
                                    sort=search.sort if search.query.condition else "date",
                                    limit=PAGE_SIZE, offset=(search.page - 1) * PAGE_SIZE)
        return page(request, "search.html", 400 if search.error else 200, search=search, result=result,
                    sources=archive.source_names(), page_size=PAGE_SIZE)

    @app.get("/notices/{document_id}", response_class=HTMLResponse, include_in_schema=False)
    def notice_page(request: Request, document_id: RowId, version: int | None = None) -> HTMLResponse:
        document = notice_or_404(document_id)
        shown = document_record(document, version)
        return page(request, "notice.html", document=document, record=shown,
                    attachment_ids=[a.id for v in document.versions if v.number == shown["version"]
                                    for a in v.attachments])

    @app.get("/notices/{document_id}/diff", response_class=HTMLResponse, include_in_schema=False)
    def diff_page(request: Request, document_id: RowId, a: int | None = None, b: int | None = None) -> HTMLResponse:
        document, change = diff_of(document_id, a, b)
        return page(request, "diff.html", document=document, change=change)

    @app.get("/attachments/{attachment_id}", include_in_schema=False)
    def attachment(attachment_id: RowId) -> Response:
        found = archive.attachment(attachment_id)
        if found is None or found[1] is None:
            raise HTTPException(404, "no archived file with this id")
        row, body = found
        return Response(body, media_type="application/octet-stream", headers={
            "Content-Disposition": _attachment_disposition(row.name, row.url)})

    @app.get("/search.csv", include_in_schema=False)
    def search_csv(search: Annotated[SearchRequest, Depends()]) -> StreamingResponse:
        return _download(archive, search, "csv")

    @app.get("/search.jsonl", include_in_schema=False)
    def search_jsonl(search: Annotated[SearchRequest, Depends()]) -> StreamingResponse:
        return _download(archive, search, "jsonl")

    @app.get("/feed.atom", include_in_schema=False)
    def feed(request: Request, search: Annotated[SearchRequest, Depends()]) -> Response:
        search.sort = "date"
        result = run_search(search, limit=50)
        title = f"zwgk: {search.q}" if search.q else "zwgk: new notices"
        body = atom_feed(title, feed_url(request), site_url, result.hits)
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    @app.get("/alerts/{name}.atom", include_in_schema=False)
    def alert_feed(name: str) -> Response:
        from ..alerts import AlertError, Alerts

        try:
            body = Alerts(archive).feed(name, site_url)
        except AlertError as error:
            raise HTTPException(404, str(error)) from error
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    # The JSON API

    @app.get("/api/search", response_model=SearchOut, tags=["search"])
    def api_search(search: Annotated[SearchRequest, Depends()]) -> dict[str, Any]:
        """Search: the query language of `zwgk search` in `q`, filters as parameters, 20 hits a page."""
        result = run_search(search)
        return {"total": result.total, "hits": [hit.__dict__ for hit in result.hits], "facets": result.facets}

    @app.get("/api/notices/{document_id}", response_model=NoticeOut, tags=["notices"])
    def api_notice(document_id: RowId, version: int | None = None) -> dict[str, Any]:
        """A notice: its latest version's record (or ``version``'s) and the list of its versions."""
        document = notice_or_404(document_id)
        return {"document_id": document.id, "url": document.url, "source": document.source.key,
                "status": document.status, "record": document_record(document, version),
                "versions": [{"version": v.number, "seen_at": china_time(v.seen_at), "content_hash": v.content_hash,
                              "title": v.title} for v in document.versions]}

    @app.get("/api/notices/{document_id}/diff", response_model=DiffOut, tags=["notices"])
    def api_diff(document_id: RowId, a: int | None = None, b: int | None = None) -> dict[str, Any]:
        """What changed between versions ``a`` and ``b`` (default: the last two)."""
        _, change = diff_of(document_id, a, b)
        return {"old": change.old_number, "new": change.new_number,
                "fields": [{"name": n, "old": o, "new": v} for n, o, v in change.fields],
                "lines": [{"op": line.op, "text": line.text} for line in change.lines]}

    return app


def _download(archive: Archive, search: SearchRequest, fmt: str) -> StreamingResponse:
    """Every notice the search matches, streamed as it is read (CSV with a BOM, for Excel)."""
    if search.error:
        raise HTTPException(400, search.error)

    def stream() -> Iterator[bytes]:
        records = archive.iter_records(all_versions=search.all_versions, search=search.query)
        lines = csv_lines(records, bom=True) if fmt == "csv" else jsonl_lines(records)
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) == 200:
                yield "".join(batch).encode("utf-8")
                batch.clear()
        yield "".join(batch).encode("utf-8")

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return StreamingResponse(stream(), media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="zwgk-search.{fmt}"'})


def is_web_url(url: str | None) -> bool:
    """Only http(s) links are rendered as links (never javascript: or data:)."""
    return bool(url) and urlsplit(url).scheme in ("http", "https")


def _attachment_disposition(name: str, url: str) -> str:
    suffix = PurePosixPath(urlsplit(url).path).suffix
    filename = name if name.lower().endswith(suffix.lower()) else name + suffix
    filename = filename.replace("/", "_").replace("\\", "_") or "attachment"
    fallback = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
