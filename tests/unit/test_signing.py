from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from ai_customer_service.security import signing

NOW = 1_800_000_000


def check(ts: str | None, sig: str | None, body: bytes = b"{}", secret: str = "k"):
    return signing.verify(secret, ts, sig, body, now=NOW, max_skew_seconds=300)


def test_matches_the_runbook_openssl_recipe() -> None:
    # echo -n "${TS}.${BODY}" | openssl dgst -sha256 -hmac "test-secret-123"
    body = b'{"test":"payload"}'
    expected = hmac.new(b"test-secret-123", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signing.sign("test-secret-123", 1700000000, body) == expected


def test_checks_run_in_the_contract_order() -> None:
    good = signing.sign("k", NOW, b"{}")
    assert check(None, good) is signing.MISSING
    assert check(str(NOW), "  ") is signing.MISSING
    assert check("soon", good) is signing.BAD_TIMESTAMP
    assert check("12.5", good) is signing.BAD_TIMESTAMP
    assert check(str(NOW - 301), "deadbeef") is signing.STALE
    assert check(str(NOW + 301), "deadbeef") is signing.STALE
    assert check(str(NOW), "deadbeef") is signing.MISMATCH
    assert check(str(NOW), good) is None
    assert check(str(NOW), "sha256=" + good) is None
    assert check(str(NOW), good.upper()) is None


@given(body=st.binary(max_size=512), secret=st.text(min_size=1, max_size=40), skew=st.integers(-300, 300))
def test_sign_then_verify_accepts(body: bytes, secret: str, skew: int) -> None:
    ts = str(NOW + skew)
    assert (
        signing.verify(secret, ts, signing.sign(secret, ts, body), body, now=NOW, max_skew_seconds=300)
        is None
    )


@given(body=st.binary(min_size=1, max_size=256), flip=st.integers(0, 255))
def test_any_changed_byte_is_rejected(body: bytes, flip: int) -> None:
    ts = str(NOW)
    sig = signing.sign("k", ts, body)
    tampered = bytes([body[0] ^ (flip or 1)]) + body[1:]
    assert check(ts, sig, tampered) is signing.MISMATCH
