"""API keys kept only as digests, JWTs verified with the configured algorithm only, roles, open mode."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth import Authenticator, Principal, Role
from gateway.exceptions import ConfigurationError, ForbiddenError, UnauthorizedError
from streams.settings import Settings

KEYS = {"k-acme": {"tenant": "acme", "role": "operator", "name": "ci"}, "k-view": {"tenant": "acme", "role": "viewer"}}


def _auth(**values: object) -> Authenticator:
    return Authenticator.from_settings(Settings(**values))  # type: ignore[arg-type]


def test_keys_are_hashed_when_loaded_and_map_to_tenant_and_role() -> None:
    auth = _auth(api_keys=json.dumps(KEYS))
    assert auth.authenticate("Bearer k-acme") == Principal("acme", Role.OPERATOR, "ci")
    assert auth.authenticate("Bearer k-view").name.startswith("key:")
    assert "k-acme" not in repr(auth.keys.__dict__)
    for header in (None, "Bearer nope", "Basic k-acme", "Bearer "):
        with pytest.raises(UnauthorizedError):
            auth.authenticate(header)


def test_keys_from_a_file_and_bad_configuration(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"k2": {"tenant": "globex", "role": "admin"}}))
    assert _auth(api_keys_file=path).authenticate("Bearer k2").tenant == "globex"
    with pytest.raises(ConfigurationError):
        _auth(api_keys="not json")
    with pytest.raises(ConfigurationError):
        _auth(api_keys=json.dumps({"k": {"tenant": "t", "role": "root"}}))


def test_roles_rank_viewer_operator_admin() -> None:
    viewer = Principal("t", Role.VIEWER, "v")
    viewer.require(Role.VIEWER)
    with pytest.raises(ForbiddenError):
        viewer.require(Role.OPERATOR)
    Principal("t", Role.ADMIN, "a").require(Role.OPERATOR)


def test_no_credentials_configured_is_open_as_default_admin() -> None:
    auth = _auth()
    assert auth.open
    assert auth.authenticate(None) == Principal("default", Role.ADMIN, "anonymous")


def _claims(**extra: object) -> dict[str, object]:
    return {"sub": "alice", "tenant": "acme", "role": "operator", "exp": int(time.time()) + 60, **extra}


def test_jwt_hs256_with_issuer_and_audience() -> None:
    secret = "s" * 32
    auth = _auth(jwt_secret=secret, jwt_issuer="idp", jwt_audience="awe")
    good = jwt.encode(_claims(iss="idp", aud="awe"), secret, algorithm="HS256")
    assert auth.authenticate(f"Bearer {good}") == Principal("acme", Role.OPERATOR, "alice")
    bad = [
        jwt.encode(_claims(iss="other", aud="awe"), secret, algorithm="HS256"),
        jwt.encode(_claims(iss="idp", aud="awe", exp=int(time.time()) - 5), secret, algorithm="HS256"),
        jwt.encode(_claims(iss="idp", aud="awe", tenant=""), secret, algorithm="HS256"),
        jwt.encode(_claims(iss="idp", aud="awe", role="root"), secret, algorithm="HS256"),
        jwt.encode(_claims(iss="idp", aud="awe"), "x" * 32, algorithm="HS256"),
        jwt.encode(_claims(iss="idp", aud="awe"), None, algorithm="none"),
    ]
    for token in bad:
        with pytest.raises(UnauthorizedError):
            auth.authenticate(f"Bearer {token}")
    # A browser's WebSocket sends the token as a query parameter instead.
    assert auth.authenticate(None, good).tenant == "acme"


def test_jwt_rs256_refuses_the_public_key_as_an_hmac_secret(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "public.pem"
    path.write_bytes(public_pem)
    auth = _auth(jwt_public_key_file=path)
    token = jwt.encode(_claims(), private, algorithm="RS256")
    assert auth.authenticate(f"Bearer {token}").name == "alice"
    import base64
    import hashlib
    import hmac

    # An attacker signs HS256 with the public key as the secret: refused, HS256 is not configured.
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(_claims()).encode()).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest())
    forged = (header + b"." + body + b"." + signature.rstrip(b"=")).decode()
    with pytest.raises(UnauthorizedError):
        auth.authenticate(f"Bearer {forged}")
