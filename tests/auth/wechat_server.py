"""A stand-in for WeChat's `auth.code2Session`, a real HTTP server on 127.0.0.1.

The provider cannot be reached from where this project is built, so the login is
tested against this server, which answers as WeChat's documentation says:

    GET /sns/jscode2session?appid=APPID&secret=SECRET&js_code=CODE&grant_type=authorization_code

HTTP 200 with a JSON body served as `text/plain` (as WeChat serves it):
`{"session_key": ..., "openid": ..., "unionid"?: ...}` on success, or
`{"errcode": N, "errmsg": "..."}`: -1 system busy, 40029 invalid code, 40163 code been
used (a code is good once), 45011 rate limit, 40226 high-risk user; 40013 / 40125 for a
wrong app id / secret. The test side issues codes (`issue`) and scripted answers
(`busy`, `limited`, `risky`; `http500` and `garbage` break the transport's contract).
Every request is recorded so tests see what the service sent.

`python -m tests.auth.wechat_server [PORT]` runs it alone (port 18432 by default);
`GET /_test/code?openid=NAME` then answers a fresh code of the user NAME, as `wx.login`
would give it to the mini-program.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

APP_ID = "wx0123456789abcdef"
APP_SECRET = "0123456789abcdef0123456789abcdef"

# Scripted codes: the documented error answers
SCRIPTED: dict[str, dict[str, Any]] = {
    "busy": {"errcode": -1, "errmsg": "system error"},
    "limited": {"errcode": 45011, "errmsg": "api minute-quota reach limit mustslower"},
    "risky": {"errcode": 40226, "errmsg": "high risk user, login blocked"},
}


@dataclass
class Issued:
    openid: str
    unionid: str | None
    session_key: str
    used: bool = False


@dataclass
class FakeWechat:
    """The server's state: issued codes and the requests seen."""

    codes: dict[str, Issued] = field(default_factory=dict)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    session_keys: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def issue(self, openid: str, *, unionid: str | None = None) -> str:
        """A fresh `wx.login` code of the WeChat user `openid` (good once)."""
        code = "0" + secrets.token_hex(16)[:31]
        session_key = secrets.token_urlsafe(18)
        with self.lock:
            self.codes[code] = Issued(openid, unionid, session_key)
            self.session_keys.append(session_key)
        return code

    def answer(self, query: dict[str, list[str]]) -> tuple[int, bytes]:
        with self.lock:
            self.requests.append(query)
        one = {k: v[0] for k, v in query.items() if len(v) == 1}
        if one.get("appid") != APP_ID:
            return 200, _json({"errcode": 40013, "errmsg": "invalid appid"})
        if one.get("secret") != APP_SECRET:
            return 200, _json({"errcode": 40125, "errmsg": "invalid appsecret"})
        if one.get("grant_type") != "authorization_code":
            return 200, _json({"errcode": 40002, "errmsg": "invalid grant_type"})
        code = one.get("js_code", "")
        if code == "http500":
            return 500, b"<html>internal error</html>"
        if code == "garbage":
            return 200, b"<html>not json</html>"
        if code in SCRIPTED:
            return 200, _json(SCRIPTED[code])
        with self.lock:
            issued = self.codes.get(code)
            if issued is None:
                return 200, _json({"errcode": 40029, "errmsg": "invalid code"})
            if issued.used:
                return 200, _json({"errcode": 40163, "errmsg": "code been used"})
            issued.used = True
        body: dict[str, Any] = {"session_key": issued.session_key, "openid": issued.openid}
        if issued.unionid is not None:
            body["unionid"] = issued.unionid
        return 200, _json(body)


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def serve(port: int = 0) -> tuple[FakeWechat, ThreadingHTTPServer]:
    """Start the server on the loopback (a free port unless given; a daemon thread);
    stop it with `server.shutdown()`."""
    fake = FakeWechat()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/_test/code":
                # What `wx.login` gives the mini-program, for trying the flow by hand
                # (docs/clients-wechat.md): a fresh code of the user named `openid`.
                openid = parse_qs(url.query).get("openid", ["o-demo-user"])[0]
                status, body = 200, fake.issue(openid).encode()
            elif url.path != "/sns/jscode2session":
                status, body = 404, b"not found"
            else:
                status, body = fake.answer(parse_qs(url.query, keep_blank_values=True))
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the tests read `fake.requests`

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake, server


if __name__ == "__main__":
    # `python -m tests.auth.wechat_server [PORT]`: the stand-in for trying the login by
    # hand against `pingyi serve --demo` (docs/clients-wechat.md).
    import sys
    import time

    fake, server = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 18432)
    print(f"code2session stand-in on {fake.base_url} (app id {APP_ID})", flush=True)
    while True:
        time.sleep(3600)
