"""Plain request/response values passed between the HTTP server and the site handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from email.utils import collapse_rfc2231_value
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    def arg(self, name: str, default: str = "") -> str:
        for key, value in self.query:
            if key == name:
                return value
        return default

    @property
    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        jar.load(self.headers.get("cookie", ""))
        return {k: m.value for k, m in jar.items()}

    @property
    def origin(self) -> str:
        """The service's base URL as the client reached it (what turkSubmitTo should be)."""
        return "http://" + self.headers.get("host", "127.0.0.1")

    def wants_json(self) -> bool:
        return "application/json" in self.headers.get("accept", "")

    def form(self) -> list[tuple[str, str]]:
        """Fields of a urlencoded or multipart form body (or of the query, for GET)."""
        if self.method == "GET":
            return list(self.query)
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + self.body)
            fields = []
            for part in message.iter_parts():
                param = part.get_param("name", header="content-disposition")
                if param is not None and part.get_filename() is None:
                    # the HTTP policy decodes RFC 2231 names (name*=utf-8''...) to text; the
                    # legacy API's (charset, language, value) form is decoded here
                    name = param if isinstance(param, str) else collapse_rfc2231_value(param)
                    payload = part.get_payload(decode=True)
                    if not isinstance(payload, bytes):  # a nested multipart: no value
                        payload = b""
                    charset = part.get_content_charset() or "utf-8"
                    fields.append((name, payload.decode(charset, "replace")))
            return fields
        return parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def data(self) -> dict[str, Any]:
        """A JSON object body, or the form fields as a dict (first value of each name)."""
        if self.headers.get("content-type", "").startswith("application/json"):
            try:
                value = json.loads(self.body or b"{}")
            except ValueError:
                return {}
            return value if isinstance(value, dict) else {}
        out: dict[str, str] = {}
        for key, value in self.form():
            out.setdefault(key, value)
        return out


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8",
                                                  "Cache-Control": "no-store"})

    @classmethod
    def json(cls, value: object, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode("utf-8"),
                   {"Content-Type": "application/json", "Cache-Control": "no-store"})

    @classmethod
    def redirect(cls, location: str, *, cookie: str | None = None) -> Response:
        headers = {"Location": location}
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        return cls(303, b"", headers)

    @classmethod
    def text(cls, text: str, status: int) -> Response:
        return cls(status, text.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})


def with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
