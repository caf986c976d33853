"""The token file and the in-memory table of token hashes.

File format, one token per line: `<token> <scope>[,<scope>...]`; blank lines
and `#` comments are ignored; scopes come from scopes.SCOPES. Only the
sha256 of each token is kept, and lookups compare digests with
hmac.compare_digest against every entry, so timing tells nothing about
which bytes matched. A token never appears in a message, a log or a label:
`TokenTable.lookup` answers with a short id (a prefix of the hash).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from roiclass.server.security.scopes import SCOPES

MIN_TOKEN_CHARS = 16  # shorter ones are guessable; the file is refused


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names file:line."""


@dataclass(frozen=True)
class Grant:
    token_id: str  # "token:<8 hex chars of the sha256>": names a token in logs without revealing it
    scopes: frozenset[str]


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenTable:
    def __init__(self, entries: list[tuple[bytes, frozenset[str]]]):
        self._entries = [(digest, Grant(f"token:{digest.hex()[:8]}", scopes)) for digest, scopes in entries]

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, token: str) -> Grant | None:
        """The grant of a known token, else None (all entries compared, constant time each)."""
        digest = token_digest(token)
        found = None
        for known, grant in self._entries:
            if hmac.compare_digest(known, digest):
                found = grant
        return found

    @classmethod
    def from_text(cls, text: str, source: str = "<tokens>") -> "TokenTable":
        entries: list[tuple[bytes, frozenset[str]]] = []
        seen: set[bytes] = set()
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{source}:{number}"
            parts = line.split()
            if len(parts) != 2:
                raise TokenFileError(f"{where}: expected '<token> <scope>[,<scope>...]' "
                                     f"(scopes: {', '.join(SCOPES)}), got {len(parts)} fields")
            token, scope_text = parts
            if len(token) < MIN_TOKEN_CHARS:
                raise TokenFileError(f"{where}: token too short: at least {MIN_TOKEN_CHARS} characters")
            scopes = [s for s in scope_text.split(",")]
            unknown = [s for s in scopes if s not in SCOPES]
            if unknown or not scopes:
                raise TokenFileError(f"{where}: unknown scope {unknown[0] if unknown else ''!r}: "
                                     f"allowed {', '.join(SCOPES)}")
            digest = token_digest(token)
            if digest in seen:
                raise TokenFileError(f"{where}: the same token is listed twice")
            seen.add(digest)
            entries.append((digest, frozenset(scopes)))
        if not entries:
            raise TokenFileError(f"{source}: no tokens (a token file must list at least one)")
        return cls(entries)

    @classmethod
    def from_file(cls, path: Path) -> "TokenTable":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{path}: cannot read the token file: {exc}") from None
        return cls.from_text(text, str(path))


def authorization(context) -> str | None:
    """The `authorization` metadata value of a call (a servicer context), if any."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def bearer_token(value: str | None) -> str | None:
    """The token of an `authorization: Bearer <token>` value, else None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
