"""Credentials out of everything the project stores: logs, MLflow params and artifacts, result
JSON files, Prefect results.

Rules, applied recursively by :func:`redact`: a value whose (dotted) key names a credential
(a word ``token``/``secret``/``key``/``password``/... in its leaf) becomes ``***``; inside any
string, the user-info of a URL (``user:password@`` and a bare ``TOKEN@``) becomes ``***@``, and
the value of a query parameter that names a credential (``?api_key=…``, ``&token=…``,
``&sig=…``) becomes ``***``. :func:`redact_argv` applies the same to a command line
(``--set tracking.api_token=…``); :func:`install_log_redaction` to every log record.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

_SECRET_WORDS = {"token", "secret", "key", "password", "passwd", "apikey", "credential", "credentials"}
#: query-parameter words that carry a credential besides :data:`_SECRET_WORDS`
_QUERY_WORDS = {"sig", "signature", "auth", "pw", "pwd"}
MASK = "***"
_URL_CREDS = re.compile(r"(://)[^/?#@\s'\"]+@")
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s'\"?]+)=([^&;#\s'\"]*)")


def is_secret_key(key: str) -> bool:
    """True when a (dotted) key names a credential: a word token/secret/key/password in its leaf."""
    leaf = str(key).rsplit(".", 1)[-1].lower()
    words = set(re.split(r"[_\-.\s]+", leaf))
    return bool(words & _SECRET_WORDS) or leaf in _SECRET_WORDS


def _query_value(m: re.Match[str]) -> str:
    name = m.group(2)
    secret = is_secret_key(name) or bool(set(re.split(r"[_\-.]+", name.lower())) & _QUERY_WORDS)
    return f"{m.group(1)}{name}={MASK}" if secret and m.group(3) else m.group(0)


def mask_url_credentials(text: str) -> str:
    """``scheme://user:pw@host`` and ``scheme://TOKEN@host`` -> ``scheme://***@host``, and
    ``?api_key=abc`` -> ``?api_key=***``, wherever they occur in ``text``."""
    return _QUERY_PARAM.sub(_query_value, _URL_CREDS.sub(r"\1" + MASK + "@", text))


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with credentials masked: ``KEY=VALUE`` words whose key names a credential,
    and URL credentials anywhere."""
    out = []
    for a in argv:
        k, eq, _ = a.partition("=")
        out.append(f"{k}={MASK}" if eq and is_secret_key(k.lstrip("-")) else mask_url_credentials(a))
    return out


class _RedactingFactory:
    """A log record factory that formats each message and masks its URL credentials."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's error to report
            return record
        masked = mask_url_credentials(text)
        if masked != text:
            record.msg, record.args = masked, None
        return record


def install_log_redaction() -> None:
    """Mask URL credentials in every log record of this process, whatever handler stores or
    prints it (console, log files, Prefect's API handler). Idempotent."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))


def redact(obj: Any, key: str = "") -> Any:
    """A copy of ``obj`` (dicts, lists, strings, scalars) with credentials masked."""
    if key and is_secret_key(key) and isinstance(obj, str) and obj:
        return MASK
    if isinstance(obj, dict):
        return {k: redact(v, str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return mask_url_credentials(obj)
    return obj


#: environment variable that hands a child process the real values of masked settings (JSON
#: ``{dotted key: value}``), so the config file written for it can stay masked on disk
SECRETS_ENV = "ZPPO_CONFIG_SECRETS"


def masked_values(flat: dict[str, Any]) -> dict[str, Any]:
    """The entries of a flattened config that :func:`redact` would change, with their real values."""
    red = redact(flat)
    return {k: v for k, v in flat.items() if red[k] != v}


def secrets_from_env() -> dict[str, Any]:
    """The ``{dotted key: real value}`` handed over in :data:`SECRETS_ENV` (``{}`` when unset)."""
    return json.loads(os.environ.get(SECRETS_ENV) or "{}")


def unmask(data: dict[str, Any], secrets: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`redact` for the entries of ``secrets`` (``{dotted key: real value}``):
    a copy of ``data`` (nested, or flat with dotted keys) whose masked entries get their real
    value back; other entries are left as they are."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        dk = f"{prefix}{k}"
        if dk in secrets and redact({dk: secrets[dk]})[dk] == v:
            out[k] = secrets[dk]
        elif isinstance(v, dict):
            out[k] = unmask(v, secrets, dk + ".")
        else:
            out[k] = v
    return out


__all__ = ["MASK", "SECRETS_ENV", "install_log_redaction", "is_secret_key", "mask_url_credentials",
           "masked_values", "redact", "redact_argv", "secrets_from_env", "unmask"]
