"""Credentials out of everything the project stores: logs, MLflow params and artifacts, result
JSON files, Prefect results.

Two rules, applied recursively by :func:`redact`: a value whose (dotted) key names a credential
(a word ``token``/``secret``/``key``/``password``/... in its leaf) becomes ``***``, and
``user:password@`` inside any URL in any string becomes ``***@``.
"""

from __future__ import annotations

import re
from typing import Any

_SECRET_WORDS = {"token", "secret", "key", "password", "passwd", "apikey", "credential", "credentials"}
MASK = "***"
_URL_CREDS = re.compile(r"(://)[^/@\s:'\"]+:[^/@\s'\"]+@")


def is_secret_key(key: str) -> bool:
    """True when a (dotted) key names a credential: a word token/secret/key/password in its leaf."""
    leaf = str(key).rsplit(".", 1)[-1].lower()
    words = set(re.split(r"[_\-.\s]+", leaf))
    return bool(words & _SECRET_WORDS) or leaf in _SECRET_WORDS


def mask_url_credentials(text: str) -> str:
    """``scheme://user:pw@host`` -> ``scheme://***@host`` wherever it occurs in ``text``."""
    return _URL_CREDS.sub(r"\1" + MASK + "@", text)


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


__all__ = ["MASK", "SECRETS_ENV", "is_secret_key", "mask_url_credentials", "masked_values", "redact"]
