"""HTTP for tests: a worker's /metrics and /health, an admin API."""
import json
import urllib.error
import urllib.request


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body); (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def http_json(method: str, url: str, token: str | None = None, body: dict | None = None,
              headers: dict | None = None, timeout: float = 15) -> tuple[int, dict | str]:
    """One request with an optional bearer token and JSON body; (status,
    the answer as JSON, or as text when it is not JSON)."""
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text
