"""Where the model key may go: the endpoint it was stored for, over https unless loopback.

Light (standard library only): the keyring side (runtime/secrets.py) binds a stored key
to `endpoint_origin` of the endpoint it was stored for, and the model provider refuses
to build a client for an endpoint `endpoint_problem` objects to.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from workflows.effects_config import is_loopback

OPENAI_ORIGIN = "https://api.openai.com"  # where the key goes when no base_url is set
_DEFAULT_PORTS = {"https": 443, "http": 80}


def endpoint_origin(base_url: str | None) -> str:
    """scheme://host[:port] of the endpoint (the default port left out), lower case;
    ValueError for something that is not an http(s) URL with a host."""
    url = urlsplit(base_url.strip() if base_url else OPENAI_ORIGIN)
    scheme = url.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not url.hostname:
        raise ValueError(f"the model endpoint {base_url!r} is not an http(s) URL with a host")
    try:
        port = url.port
    except ValueError:
        raise ValueError(f"the model endpoint {base_url!r} has a bad port") from None
    host = url.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    shown = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host}{shown}"


def endpoint_problem(base_url: str | None) -> str | None:
    """Why the model key must not be sent to this endpoint at all (one line), or None:
    plain http is for this machine only, anything else over the network is https."""
    try:
        origin = endpoint_origin(base_url)
    except ValueError as error:
        return str(error)
    url = urlsplit(origin)
    if url.scheme == "http" and not is_loopback(url.hostname or ""):
        return (
            f"the model key is never sent over plain http to {url.netloc}: "
            "use https (plain http is for 127.0.0.1, ::1 and localhost only)"
        )
    return None
