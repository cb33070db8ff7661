"""Downloading weights over HTTP(S), including Google Drive's confirmation flow.

:func:`download_url` streams a URL to a file with a tqdm progress bar, into a temporary file that is
renamed over the destination only once the transfer is complete (no half-written checkpoints).

Google Drive share links (``https://drive.google.com/file/d/<id>/view``) are turned into the direct
``<base>/uc?export=download&id=<id>`` request, and the answers Drive gives are handled:

* the file itself (small files, or after a redirect to ``drive.usercontent.google.com``);
* the "can't scan this file for viruses" HTML page of large files, in its two forms: a
  ``<form id="download-form" action=...>`` with hidden inputs (``id``, ``export``, ``confirm``,
  ``uuid``; drive.usercontent.google.com) that is submitted as a GET, and the older page with a
  ``confirm=<token>`` link and/or a ``download_warning_*`` cookie whose value is the token;
* HTML error pages (download quota exceeded, sign-in / permission required) and HTTP errors, which
  become a :class:`DownloadError` with a clear reason: HTML is never saved as a checkpoint.

The Drive host can be replaced (tests, proxies) by the ``gdrive_base`` argument or the
``SALRANK_GDRIVE_BASE`` environment variable; plain URLs can be served from a mirror by
``SALRANK_WEIGHTS_MIRROR`` (see :func:`candidate_urls`).
"""

from __future__ import annotations

import contextlib
import html
import http.client
import http.cookiejar
import logging
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from salrank.errors import SalrankError

logger = logging.getLogger(__name__)

DEFAULT_GDRIVE_BASE = "https://drive.google.com"
GDRIVE_BASE_ENV = "SALRANK_GDRIVE_BASE"
MIRROR_ENV = "SALRANK_WEIGHTS_MIRROR"
USER_AGENT = "salrank-weights/0.1 (python-urllib)"
CHUNK = 1 << 20
MAX_HTML = 2 << 20
MAX_CONFIRM_STEPS = 4

_DRIVE_ID_PATTERNS = (
    re.compile(r"/file/d/([A-Za-z0-9_-]{10,})"),
    re.compile(r"[?&]id=([A-Za-z0-9_-]{10,})"),
)


class DownloadError(SalrankError):
    """A download that did not produce the file.

    ``reason`` is one of ``"network"`` (host unreachable, timeout: typically offline), ``"not_found"``,
    ``"permission"``, ``"quota"``, ``"html"`` (an unexpected web page), ``"http"`` (another HTTP
    status), ``"incomplete"`` (connection closed early) or ``"invalid"`` (the file arrived but failed
    verification).
    """

    def __init__(self, message: str, url: str | None = None, reason: str = "http") -> None:
        self.message = message
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {message}" if url else message)


# ----------------------------------------------------------------------------------------------------
# URLs
# ----------------------------------------------------------------------------------------------------


def google_drive_id(url: str) -> str | None:
    """The file id of a Google Drive link (``/file/d/<id>/...``, ``open?id=``, ``uc?id=``), else ``None``."""
    host = urllib.parse.urlparse(url).netloc.lower()
    if not (host.endswith("drive.google.com") or host.endswith("drive.usercontent.google.com") or host.endswith("docs.google.com")):
        return None
    for pattern in _DRIVE_ID_PATTERNS:
        m = pattern.search(url)
        if m:
            return m.group(1)
    return None


def gdrive_base_url(gdrive_base: str | None = None) -> str:
    """The Drive host to talk to: the argument, ``$SALRANK_GDRIVE_BASE`` or ``https://drive.google.com``."""
    return (gdrive_base or os.environ.get(GDRIVE_BASE_ENV) or DEFAULT_GDRIVE_BASE).rstrip("/")


def candidate_urls(urls: tuple[str, ...] | list[str], filename: str, mirror: str | None = None) -> list[str]:
    """The URLs to try in order: ``$SALRANK_WEIGHTS_MIRROR/<filename>`` first when a mirror is set, then ``urls``."""
    base = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    out = []
    if base:
        out.append(f"{base.rstrip('/')}/{urllib.parse.quote(filename)}")
    out.extend(urls)
    return out


# ----------------------------------------------------------------------------------------------------
# HTML of Drive's confirmation pages
# ----------------------------------------------------------------------------------------------------


class _DriveFormParser(HTMLParser):
    """Collects the ``download-form`` (action + hidden inputs) and the links of a Drive page."""

    def __init__(self) -> None:
        super().__init__()
        self.form_action: str | None = None
        self.form_inputs: list[tuple[str, str]] = []
        self.links: list[str] = []
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and a.get("id") == "download-form":
            self._in_form = True
            self.form_action = a.get("action", "")
        elif tag == "input" and self._in_form and a.get("name"):
            if a.get("type", "hidden").lower() not in ("submit", "button", "image", "reset"):
                self.form_inputs.append((a["name"], a.get("value", "")))
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _confirm_url(page: str, page_url: str, file_id: str, cookies: http.cookiejar.CookieJar, base: str) -> str | None:
    """The next URL to request after a Drive confirmation page, or ``None`` if the page is not one."""
    parser = _DriveFormParser()
    with contextlib.suppress(Exception):
        parser.feed(page)
    if parser.form_action is not None:
        action = urllib.parse.urljoin(page_url, html.unescape(parser.form_action) or page_url)
        query = urllib.parse.urlencode(parser.form_inputs)
        return f"{action}{'&' if '?' in action else '?'}{query}" if query else action
    for cookie in cookies:
        if cookie.name.startswith("download_warning"):
            return f"{base}/uc?export=download&confirm={urllib.parse.quote(cookie.value)}&id={file_id}"
    for href in parser.links:
        href = html.unescape(href)
        if "confirm=" in href and ("export=download" in href or "/uc" in href or "download" in href):
            return urllib.parse.urljoin(page_url, href)
    m = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if m:
        return f"{base}/uc?export=download&confirm={m.group(1)}&id={file_id}"
    return None


def _html_error(page: str, url: str, drive: bool = True) -> DownloadError:
    """A :class:`DownloadError` describing an HTML page received instead of a file."""
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).strip()
    low = page.lower()
    if not drive:
        title = re.search(r"<title>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
        what = html.unescape(title.group(1)).strip() if title else text[:120]
        return DownloadError(f"the server returned a web page ({what!r}) instead of the file", url, "html")
    if "quota" in low or "too many users have viewed or downloaded" in low:
        return DownloadError(
            "Google Drive refuses the download: the file's download quota is exceeded ('Too many users have "
            "viewed or downloaded this file recently'). Try again in 24 hours, or open the link in a browser "
            "signed in to Google and download it by hand.",
            url,
            "quota",
        )
    if (
        "servicelogin" in low
        or "accounts.google.com" in low
        or "you need access" in low
        or "request access" in low
        or "you need permission" in low
        or "sign in" in low
    ):
        return DownloadError(
            "Google Drive asks for a sign-in or permission: the file is not shared publicly (or was removed). "
            "Ask the authors, or download it in a browser with an account that has access.",
            url,
            "permission",
        )
    title = re.search(r"<title>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    what = html.unescape(title.group(1)).strip() if title else text[:120]
    return DownloadError(f"the server returned a web page ({what!r}) instead of the file", url, "html")


# ----------------------------------------------------------------------------------------------------
# Transfer
# ----------------------------------------------------------------------------------------------------


def _build_opener(cookies: http.cookiejar.CookieJar) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies))


def _open(opener: urllib.request.OpenerDirector, url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        body = b""
        with contextlib.suppress(Exception):
            body = exc.read(MAX_HTML)
        if exc.code == 404:
            raise DownloadError("HTTP 404: there is no file at this address (the link may have been removed)", url, "not_found") from None
        if exc.code in (401, 403):
            low = body.lower()
            if b"quota" in low or b"too many users" in low:
                raise DownloadError(
                    f"HTTP {exc.code}: download quota exceeded; try again later or download it in a browser", url, "quota"
                ) from None
            raise DownloadError(f"HTTP {exc.code}: access denied (the file is not public or the quota is exceeded)", url, "permission") from None
        if exc.code == 429:
            raise DownloadError("HTTP 429: too many requests; try again later", url, "quota") from None
        raise DownloadError(f"HTTP {exc.code} {exc.reason}", url, "http") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot reach the server ({exc.reason}); is this machine offline?", url, "network") from None
    except TimeoutError:
        raise DownloadError("the server did not answer in time (offline or blocked?)", url, "network") from None
    except (ConnectionError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"connection failed ({exc})", url, "network") from None


def _is_html_response(response, first: bytes) -> bool:
    ctype = (response.headers.get("Content-Type") or "").lower()
    from salrank.weights.verify import looks_like_html

    return "text/html" in ctype or looks_like_html(first)


def _read_first(response, url: str) -> bytes:
    try:
        return response.read(CHUNK)
    except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"the connection broke ({exc})", url, "network") from None


@contextlib.contextmanager
def _temp_beside(dest: Path) -> Iterator[Path]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    path = Path(tmp)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _stream_to(response, first: bytes, out: Path, url: str, label: str, progress: bool) -> int:
    from tqdm import tqdm

    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    written = 0
    with open(out, "wb") as fh, tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=None if progress else True,
        leave=False,
    ) as bar:
        block = first
        while block:
            fh.write(block)
            written += len(block)
            bar.update(len(block))
            try:
                block = response.read(CHUNK)
            except (TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"the connection broke after {written} bytes ({exc})", url, "incomplete") from None
        fh.flush()
        os.fsync(fh.fileno())
    if total is not None and written != total:
        raise DownloadError(f"incomplete download: got {written} of {total} bytes", url, "incomplete")
    if written == 0:
        raise DownloadError("the server sent an empty file", url, "incomplete")
    return written


def download_url(
    url: str,
    dest: str | os.PathLike[str],
    *,
    gdrive_base: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    label: str | None = None,
) -> Path:
    """Download ``url`` to ``dest`` (atomically: a temporary file renamed when complete).

    Google Drive links go through Drive's confirmation flow (see the module docstring). Raises
    :class:`DownloadError` when no file arrives: offline, HTTP errors, or an HTML page (quota,
    permission, unknown) in place of the file.
    """
    target = Path(dest)
    cookies = http.cookiejar.CookieJar()
    opener = _build_opener(cookies)
    file_id = google_drive_id(url)
    name = label or target.name
    if file_id is not None:
        base = gdrive_base_url(gdrive_base)
        request_url = f"{base}/uc?export=download&id={file_id}"
        logger.info("downloading %s from Google Drive (id %s)", name, file_id)
        for _step in range(MAX_CONFIRM_STEPS + 1):
            response = _open(opener, request_url, timeout)
            with contextlib.closing(response):
                first = _read_first(response, request_url)
                if not _is_html_response(response, first):
                    with _temp_beside(target) as tmp:
                        _stream_to(response, first, tmp, request_url, name, progress)
                        os.replace(tmp, target)
                    return target
                page = (first + response.read(MAX_HTML)).decode("utf-8", "replace")
                page_url = response.geturl()
            next_url = _confirm_url(page, page_url, file_id, cookies, base)
            if next_url is None or next_url == request_url:
                raise _html_error(page, url)
            logger.debug("Google Drive confirmation page; following %s", next_url)
            request_url = next_url
        raise DownloadError("Google Drive kept answering with confirmation pages", url, "html")

    logger.info("downloading %s from %s", name, url)
    response = _open(opener, url, timeout)
    with contextlib.closing(response):
        first = _read_first(response, url)
        if _is_html_response(response, first):
            page = (first + response.read(MAX_HTML)).decode("utf-8", "replace")
            raise _html_error(page, url, drive=False)
        with _temp_beside(target) as tmp:
            _stream_to(response, first, tmp, url, name, progress)
            os.replace(tmp, target)
    return target
