"""Downloads (salrank.weights.download) and ``fetch`` against a local imitation of Google Drive.

A ``http.server`` on 127.0.0.1, started inside the test, plays Drive's answers: the file itself, the
old "can't scan for viruses" page (confirm link + ``download_warning_*`` cookie), the
drive.usercontent.google.com ``download-form``, quota and sign-in HTML pages, a 404, an HTML body
sent as a binary type and a truncated transfer. Every test points salrank at it through
``SALRANK_GDRIVE_BASE`` / ``SALRANK_WEIGHTS_MIRROR`` and a guard refuses name lookups of any other
host, so no real remote host is ever contacted.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading
import urllib.parse
from pathlib import Path

import pytest
import torch
from _state_builders import seqrank_state

from salrank.cli import main
from salrank.weights import DownloadError, FetchError, download_url, fetch_weights, google_drive_id, installed_path
from salrank.weights.store import target_path

TOKEN = "Xy7_token"


def _id(scenario: str) -> str:
    """A Drive-like file id (Drive ids are long) whose start names the scenario the server plays."""
    return f"{scenario}_0123456789abcdefXYZ"
UUID = "c0ffee00-1234"


def _checkpoint_bytes(variant: str) -> bytes:
    buf = io.BytesIO()
    torch.save({"model": seqrank_state(variant)}, buf)
    return buf.getvalue()


CORRECT = _checkpoint_bytes("correct")
ORIGINAL = _checkpoint_bytes("original")

OLD_CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<a id="uc-download-link" href="/uc?export=download&amp;confirm={token}&amp;id={id}">Download anyway</a>
<a href="https://accounts.google.com/ServiceLogin">Sign in</a></body></html>"""

FORM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<div class="uc-warning-subcaption">Google Drive can't scan this file for viruses.</div>
<form id="download-form" action="{base}/download" method="get">
<input type="submit" id="uc-download-link" value="Download anyway">
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form>
</body></html>"""

QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body>
<p>Sorry, you can't view or download this file at this time.</p><p>Too many users have viewed or downloaded
this file recently. Please try accessing the file again later.</p></body></html>"""

SIGNIN_PAGE = """<!DOCTYPE html><html><head><title>Sign in - Google Accounts</title></head><body>
<form action="https://accounts.google.com/signin/v2/challenge">Sign in to continue to Google Drive</form></body></html>"""


class DriveImitation(http.server.BaseHTTPRequestHandler):
    """Answers like Google Drive for file ids that name the scenario."""

    files: dict[str, bytes] = {}
    log: list[str] = []

    def log_message(self, format: str, *args) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _file(self, name: str) -> None:
        self._send(200, self.files[name], "application/octet-stream", {"Content-Disposition": 'attachment; filename="ckp.pth"'})

    def _html(self, page: str, headers: dict[str, str] | None = None) -> None:
        self._send(200, page.encode(), "text/html; charset=utf-8", headers)

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        self.log.append(self.path)
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        fid = q.get("id", "")
        if url.path == "/uc":
            if fid.startswith("direct"):
                return self._file(fid)
            if fid.startswith("oldflow"):
                cookie = self.headers.get("Cookie", "")
                if q.get("confirm") == TOKEN and f"download_warning_1305_{fid}={TOKEN}" in cookie:
                    return self._file(fid)
                return self._html(
                    OLD_CONFIRM_PAGE.format(token=TOKEN, id=fid),
                    {"Set-Cookie": f"download_warning_1305_{fid}={TOKEN}; Path=/"},
                )
            if fid.startswith("cookieonly"):
                if q.get("confirm") == TOKEN:
                    return self._file(fid)
                return self._html("<html><body>Virus scan warning</body></html>", {"Set-Cookie": f"download_warning_99_{fid}={TOKEN}; Path=/"})
            if fid.startswith("newflow"):
                self.send_response(303)
                self.send_header("Location", f"{base}/download?id={fid}&export=download")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            if fid.startswith("quota"):
                return self._html(QUOTA_PAGE)
            if fid.startswith("private"):
                self.send_response(302)
                self.send_header("Location", f"{base}/ServiceLogin?continue=drive")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            if fid.startswith("disguised"):
                return self._send(200, b"\n<!DOCTYPE html><html><title>Error 500</title></html>", "application/octet-stream")
            if fid.startswith("truncated"):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(CORRECT) + 1000))
                self.end_headers()
                self.wfile.write(CORRECT[: len(CORRECT) // 2])
                return None
            return self._send(404, b"<html>Not Found</html>", "text/html")
        if url.path == "/download":
            if q.get("confirm") == "t" and q.get("uuid") == UUID and fid in self.files:
                return self._file(fid)
            return self._html(FORM_PAGE.format(base=base, id=fid, uuid=UUID))
        if url.path == "/ServiceLogin":
            return self._html(SIGNIN_PAGE)
        if url.path.startswith("/mirror/"):
            name = url.path.rsplit("/", 1)[-1]
            if name in self.files:
                return self._file(name)
        return self._send(404, b"<html>Not Found</html>", "text/html")


@pytest.fixture
def drive(monkeypatch):
    """The local Drive imitation; yields its base URL. Stops by itself after the test."""
    DriveImitation.files = {
        _id("direct1"): CORRECT,
        _id("oldflow1"): CORRECT,
        _id("cookieonly1"): CORRECT,
        _id("newflow1"): CORRECT,
        _id("direct-original"): ORIGINAL,
        "seqrank_assr_swinL_correct_ckp.pth": CORRECT,
    }
    DriveImitation.log = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DriveImitation)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("SALRANK_GDRIVE_BASE", base)
    monkeypatch.delenv("SALRANK_WEIGHTS_MIRROR", raising=False)
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch, tmp_path):
    """Refuse to resolve any host but the loopback, and keep the store in a temporary folder."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no network for {host}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    monkeypatch.setenv("SALRANK_HOME", str(tmp_path / "home"))


def _drive_link(fid: str) -> str:
    return f"https://drive.google.com/file/d/{_id(fid)}/view?usp=drive_link"


# ---------------------------------------------------------------- link parsing


def test_google_drive_id():
    assert google_drive_id("https://drive.google.com/file/d/1rWHEUlnCWweoYqdY9JvrHuts-2lmUr_B/view?usp=drive_link") == (
        "1rWHEUlnCWweoYqdY9JvrHuts-2lmUr_B"
    )
    assert google_drive_id("https://drive.google.com/open?id=10oqR9YsDrwicpbykL91bu0HYBndvl6PQ") == "10oqR9YsDrwicpbykL91bu0HYBndvl6PQ"
    assert google_drive_id("https://drive.google.com/uc?export=download&id=1e9JUHB3gVq4AK1Z4lIQvPYz6h2rs3zre") == (
        "1e9JUHB3gVq4AK1Z4lIQvPYz6h2rs3zre"
    )
    assert google_drive_id("https://github.com/SwinTransformer/storage/releases/download/v1.0.0/x.pth") is None


# ---------------------------------------------------------------- Drive flows


@pytest.mark.parametrize("fid", ["direct1", "oldflow1", "cookieonly1", "newflow1"])
def test_drive_flows_deliver_the_file(drive, tmp_path, fid):
    out = download_url(_drive_link(fid), tmp_path / "ckp.pth", progress=False, timeout=5)
    assert out.read_bytes() == CORRECT
    assert not [p for p in tmp_path.iterdir() if p.name != "ckp.pth"]  # no temp files left
    if fid == "oldflow1":
        assert any(f"confirm={TOKEN}" in p for p in DriveImitation.log)
    if fid == "newflow1":
        assert any(p.startswith("/download?") and f"uuid={UUID}" in p and "confirm=t" in p for p in DriveImitation.log)


@pytest.mark.parametrize(
    "fid, reason, text",
    [
        ("quota1", "quota", "quota is exceeded"),
        ("private1", "permission", "sign-in or permission"),
        ("missing1", "not_found", "HTTP 404"),
        ("disguised1", "html", "web page ('Error 500')"),
        ("truncated1", "incomplete", ""),
    ],
)
def test_drive_failures_are_clear_and_save_nothing(drive, tmp_path, fid, reason, text):
    dest = tmp_path / "out" / "ckp.pth"
    with pytest.raises(DownloadError) as err:
        download_url(_drive_link(fid), dest, progress=False, timeout=5)
    assert err.value.reason == reason
    assert text in str(err.value)
    assert not dest.exists()
    assert not dest.parent.exists() or not list(dest.parent.iterdir())


def test_plain_url_html_is_refused(drive, tmp_path):
    with pytest.raises(DownloadError) as err:
        download_url(f"{drive}/ServiceLogin", tmp_path / "x.pth", progress=False, timeout=5)
    assert err.value.reason == "html" and "instead of the file" in str(err.value)
    assert not (tmp_path / "x.pth").exists()


def test_offline_is_reported_as_network(tmp_path, monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(DownloadError) as err:
        download_url(_drive_link("direct1"), tmp_path / "x.pth", gdrive_base=f"http://127.0.0.1:{port}", timeout=2)
    assert err.value.reason == "network"
    with pytest.raises(DownloadError) as err:
        download_url("https://example.invalid/file.pth", tmp_path / "x.pth", timeout=2)
    assert err.value.reason == "network" and "offline" in str(err.value)


# ---------------------------------------------------------------- fetch into the store


@pytest.fixture
def use_link():
    """Point a zoo entry at a scenario of the imitation (through the public registry); restored afterwards."""
    import dataclasses

    from salrank.weights import get_entry, register_entry

    saved = {}

    def point(name: str, scenario: str) -> None:
        entry = get_entry(name)
        saved.setdefault(name, entry)
        register_entry(dataclasses.replace(entry, urls=(_drive_link(scenario),)), replace=True)

    yield point
    for entry in saved.values():
        register_entry(entry, replace=True)


def test_fetch_verifies_and_installs(drive, monkeypatch, use_link):
    use_link("seqrank-assr-correct", "newflow1")
    path = fetch_weights("seqrank-assr-correct", progress=False, timeout=5)
    assert path == target_path("seqrank-assr-correct") and path.read_bytes() == CORRECT
    assert installed_path("seqrank-assr-correct") == path
    record = path.with_name(path.name + ".json")
    assert record.is_file() and '"kind": "seqrank-correct"' in record.read_text()
    # a second fetch keeps the installed file and does not download
    n = len(DriveImitation.log)
    assert fetch_weights("seqrank-assr-correct", progress=False) == path
    assert len(DriveImitation.log) == n
    # --force downloads again
    fetch_weights("seqrank-assr-correct", progress=False, force=True, timeout=5)
    assert len(DriveImitation.log) > n


def test_fetch_refuses_a_wrong_variant(drive, monkeypatch, use_link):
    use_link("seqrank-irsr-correct", "direct-original")
    with pytest.raises(FetchError) as err:
        fetch_weights("seqrank-irsr-correct", progress=False, timeout=5)
    msg = str(err.value)
    assert "SeqRank original (FrcPN neck, 6 SRM blocks) checkpoint, not seqrank-irsr-correct" in msg
    assert err.value.reason == "invalid"
    folder = target_path("seqrank-irsr-correct").parent
    assert not folder.exists() or not list(folder.iterdir())


def test_fetch_uses_mirror_first(drive, monkeypatch, use_link):
    use_link("seqrank-assr-correct", "quota1")
    monkeypatch.setenv("SALRANK_WEIGHTS_MIRROR", f"{drive}/mirror")
    path = fetch_weights("seqrank-assr-correct", progress=False, timeout=5)
    assert path.read_bytes() == CORRECT
    assert DriveImitation.log[0] == "/mirror/seqrank_assr_swinL_correct_ckp.pth"


def test_fetch_reports_every_link_that_failed(drive, monkeypatch, use_link):
    use_link("seqrank-assr-correct", "quota1")
    monkeypatch.setenv("SALRANK_WEIGHTS_MIRROR", f"{drive}/nothing-here")
    with pytest.raises(FetchError) as err:
        fetch_weights("seqrank-assr-correct", progress=False, timeout=5)
    assert [a.reason for a in err.value.attempts] == ["not_found", "quota"]
    assert "salrank weights import seqrank-assr-correct" in str(err.value)


# ---------------------------------------------------------------- the command line, offline


def test_cli_fetch_offline_says_where_to_get_and_put_the_file(tmp_path, monkeypatch, capsys):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setenv("SALRANK_GDRIVE_BASE", f"http://127.0.0.1:{port}")
    code = main(["weights", "fetch", "seqrank-assr", "--timeout", "2", "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err
    assert "no network access" in err
    assert "https://drive.google.com/file/d/1rWHEUlnCWweoYqdY9JvrHuts-2lmUr_B/view" in err
    assert str(Path(tmp_path / "home" / "weights" / "seqrank_assr_swinL_ckp.pth")) in err
    assert "salrank weights import seqrank-assr" in err


def test_cli_fetch_through_drive(drive, monkeypatch, use_link, capsys):
    use_link("seqrank-assr-correct", "oldflow1")
    assert main(["weights", "fetch", "seqrank-assr-correct", "--no-progress", "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert "seqrank-assr-correct installed:" in out
    assert main(["weights", "path", "seqrank-assr-correct"]) == 0
    assert capsys.readouterr().out.strip() == str(target_path("seqrank-assr-correct"))
