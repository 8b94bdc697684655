"""Who is calling: API keys (stored only as SHA-256 digests) and JWTs (HS256 or RS256), each naming a
tenant and a role, and what each role may do.

Nothing here mints credentials: keys come from the operator's configuration, tokens from their identity
provider. With neither configured the gateway is open and every caller is ``default``'s admin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.exceptions import ConfigurationError, ForbiddenError, UnauthorizedError
from streams.settings import Settings

OPEN_TENANT = "default"


class Role(StrEnum):
    """What a caller may do: viewers read, operators also start, signal, cancel and apply, admins all."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the tenant every command and read is scoped to, its role and a name for
    the audit trail (``principal`` on commands)."""

    tenant: str
    role: Role
    name: str

    def require(self, role: Role) -> None:
        """Raise ForbiddenError unless this caller's role is at least ``role``."""
        if _RANK[self.role] < _RANK[role]:
            raise ForbiddenError(f"role {self.role.value} may not do this; {role.value} or above is needed")


#: Every caller of a gateway configured without credentials.
OPEN_PRINCIPAL = Principal(OPEN_TENANT, Role.ADMIN, "anonymous")


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant: str = Field(min_length=1, max_length=100)
    role: Role
    name: str | None = Field(default=None, max_length=200)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyRing:
    """API keys by SHA-256 digest: the plain keys are dropped as soon as they are read."""

    def __init__(self, entries: dict[str, _KeyEntry]) -> None:
        self._by_digest = {
            _digest(key): Principal(entry.tenant, entry.role, entry.name or f"key:{_digest(key)[:8]}")
            for key, entry in entries.items()
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Keys from ``AWE_API_KEYS`` and ``AWE_API_KEYS_FILE`` (both may be given; they are merged)."""
        raw: dict[str, Any] = {}
        if settings.api_keys is not None:
            raw.update(_parse_keys(settings.api_keys.get_secret_value(), "AWE_API_KEYS"))
        if settings.api_keys_file is not None:
            try:
                text = Path(settings.api_keys_file).read_text()
            except OSError as e:
                raise ConfigurationError(f"cannot read AWE_API_KEYS_FILE {settings.api_keys_file}: {e}") from e
            raw.update(_parse_keys(text, str(settings.api_keys_file)))
        try:
            entries = {str(key): _KeyEntry.model_validate(value) for key, value in raw.items()}
        except ValidationError as e:
            raise ConfigurationError(f"API keys: {e.errors(include_url=False)}") from e
        return cls(entries)

    def __len__(self) -> int:
        return len(self._by_digest)

    def lookup(self, key: str) -> Principal | None:
        """The principal of a presented key, if it is one of ours."""
        # Looked up by digest: the lookup's timing depends on the digest, which says nothing about the key.
        return self._by_digest.get(_digest(key))


def _parse_keys(text: str, where: str) -> dict[str, Any]:
    try:
        loaded = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise ConfigurationError(f"{where} is not JSON: {e}") from e
    if not isinstance(loaded, dict):
        raise ConfigurationError(f'{where} must be a JSON object {{"<key>": {{"tenant": ..., "role": ...}}}}')
    return loaded


class JwtVerifier:
    """Verifies HS256 (shared secret) or RS256 (public key) tokens, with issuer and audience when set."""

    def __init__(self, settings: Settings) -> None:
        self._keys: list[tuple[str, Any]] = []
        if settings.jwt_secret is not None:
            self._keys.append(("HS256", settings.jwt_secret.get_secret_value()))
        if settings.jwt_public_key_file is not None:
            try:
                self._keys.append(("RS256", Path(settings.jwt_public_key_file).read_text()))
            except OSError as e:
                raise ConfigurationError(f"cannot read AWE_JWT_PUBLIC_KEY_FILE: {e}") from e
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._tenant_claim = settings.jwt_tenant_claim
        self._role_claim = settings.jwt_role_claim

    @property
    def configured(self) -> bool:
        """Whether any key to verify tokens with is set."""
        return bool(self._keys)

    def verify(self, token: str) -> Principal:
        """The principal a valid token names; UnauthorizedError for anything else."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as e:
            raise UnauthorizedError("malformed token") from e
        # The algorithm is taken from our configuration, never from the token: a token cannot choose to be
        # checked with "none" or with the RS256 public key used as an HS256 secret.
        key = next((k for alg, k in self._keys if alg == algorithm), None)
        if key is None:
            raise UnauthorizedError(f"tokens signed with {algorithm} are not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as e:
            raise UnauthorizedError(f"invalid token: {e}") from e
        tenant, role = claims.get(self._tenant_claim), claims.get(self._role_claim, Role.VIEWER.value)
        if not isinstance(tenant, str) or not tenant:
            raise UnauthorizedError(f"token has no {self._tenant_claim!r} claim")
        try:
            return Principal(tenant, Role(role), str(claims["sub"]))
        except ValueError as e:
            raise UnauthorizedError(f"token role {role!r} is not one of viewer, operator, admin") from e


class Authenticator:
    """Turns an ``Authorization`` header (or a WebSocket ``token`` parameter) into a :class:`Principal`."""

    def __init__(self, keys: KeyRing, tokens: JwtVerifier) -> None:
        self.keys = keys
        self.tokens = tokens

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """Keys and JWT verification as configured."""
        return cls(KeyRing.from_settings(settings), JwtVerifier(settings))

    @property
    def open(self) -> bool:
        """No credentials configured: every caller acts as tenant ``default`` with the admin role."""
        return not self.keys and not self.tokens.configured

    def authenticate(self, header: str | None, token: str | None = None) -> Principal:
        """The caller named by ``Authorization: Bearer <key or JWT>`` (or a bare ``token``)."""
        if self.open:
            return OPEN_PRINCIPAL
        credential = token
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise UnauthorizedError("use Authorization: Bearer <api key or JWT>")
            credential = value.strip()
        if not credential:
            raise UnauthorizedError("credentials required: Authorization: Bearer <api key or JWT>")
        found = self.keys.lookup(credential)
        if found is not None:
            return found
        # A JWT is three base64url parts; anything else is an unknown key.
        if credential.count(".") == 2 and self.tokens.configured:
            return self.tokens.verify(credential)
        raise UnauthorizedError("unknown API key")
