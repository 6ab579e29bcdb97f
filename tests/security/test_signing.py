"""common/signing.py: the signed form of a desk message, and every way a check must fail.

The expected values are written here by hand (the known-answer vector was computed with
``openssl dgst -sha256 -hmac``), not by calling the code under test.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from common.signing import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    MessageFields,
    NonceCache,
    Verifier,
    canonical,
    sign,
    signature,
    text_digest,
)

SECRET = "test-channel-secret"
TEXT = "我还清了为什么借不了"
TEXT_SHA256 = "f7d84ae1038981b737609c7f3760dfb4c36648ee3727fadb50020f8da5497f52"
NOW = 1764493200
NONCE = "nonce-0123456789abcdef"
FIELDS = MessageFields(sender="c-abc123", text=TEXT, borrower_id="demo-closed", locale="zh-CN")
CANONICAL = ("relend-desk-v1\nc-abc123\n" + TEXT_SHA256 + "\ndemo-closed\nzh-CN\n1764493200\n"
             "nonce-0123456789abcdef").encode()
# printf '<CANONICAL>' | openssl dgst -sha256 -hmac test-channel-secret
SIGNATURE = "5adb44c34969ca043b132ea2c4bb965a167135f28cabb49c87468355e277de3b"


def headers(sig: str = SIGNATURE, *, timestamp: int = NOW, nonce: str = NONCE
            ) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), NONCE_HEADER: nonce, SIGNATURE_HEADER: sig}


def test_text_digest_is_the_sha256_of_the_utf8_text() -> None:
    assert text_digest("hello") == \
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert text_digest(TEXT) == TEXT_SHA256


def test_the_canonical_form_is_seven_lines() -> None:
    assert canonical(FIELDS, NOW, NONCE) == CANONICAL


def test_the_signature_matches_a_known_answer_and_an_independent_hmac() -> None:
    independent = hmac.new(SECRET.encode(), CANONICAL, hashlib.sha256).hexdigest()
    assert independent == SIGNATURE
    assert signature(SECRET, FIELDS, NOW, NONCE) == SIGNATURE
    assert sign(SECRET, FIELDS, timestamp=NOW, nonce=NONCE) == headers()


def test_sign_uses_now_and_a_fresh_nonce_by_default() -> None:
    first, second = sign(SECRET, FIELDS), sign(SECRET, FIELDS)
    assert first[NONCE_HEADER] != second[NONCE_HEADER]
    Verifier(SECRET).verify(FIELDS, first)  # fresh: accepted now


def test_a_correctly_signed_message_is_accepted_once() -> None:
    verifier = Verifier(SECRET)
    verifier.verify(FIELDS, headers(), now=NOW + 5)
    with pytest.raises(InvalidSignature, match="replay"):
        verifier.verify(FIELDS, headers(), now=NOW + 6)


def test_header_names_are_case_insensitive() -> None:
    lower = {k.lower(): v for k, v in headers().items()}
    Verifier(SECRET).verify(FIELDS, lower, now=NOW)


@pytest.mark.parametrize("changed", [
    MessageFields("c-abc124", TEXT, "demo-closed", "zh-CN"),     # another conversation
    MessageFields("c-abc123", TEXT + "。", "demo-closed", "zh-CN"),  # altered text
    MessageFields("c-abc123", TEXT, "demo-eligible", "zh-CN"),   # another borrower
    MessageFields("c-abc123", TEXT, "", "zh-CN"),                # identity removed
    MessageFields("c-abc123", TEXT, "demo-closed", "en-US"),     # another locale
], ids=["sender", "text", "borrower", "no-borrower", "locale"])
def test_any_changed_field_breaks_the_signature(changed: MessageFields) -> None:
    with pytest.raises(InvalidSignature, match="mismatch"):
        Verifier(SECRET).verify(changed, headers(), now=NOW)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    forged = hmac.new(b"guessed-secret", CANONICAL, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidSignature, match="mismatch"):
        Verifier(SECRET).verify(FIELDS, headers(forged), now=NOW)


def test_the_timestamp_and_nonce_are_signed_too() -> None:
    verifier = Verifier(SECRET)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verifier.verify(FIELDS, headers(timestamp=NOW + 1), now=NOW)
    with pytest.raises(InvalidSignature, match="mismatch"):
        verifier.verify(FIELDS, headers(nonce="nonce-0123456789abcdeg"), now=NOW)


@pytest.mark.parametrize("now", [NOW + 61, NOW - 61, NOW + 3600, 0])
def test_a_timestamp_outside_the_window_is_refused(now: int) -> None:
    with pytest.raises(InvalidSignature, match="window"):
        Verifier(SECRET, window=60).verify(FIELDS, headers(), now=now)


@pytest.mark.parametrize("now", [NOW + 60, NOW - 60])
def test_the_window_edges_are_accepted(now: int) -> None:
    Verifier(SECRET, window=60).verify(FIELDS, headers(), now=now)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER])
def test_a_missing_header_is_refused(missing: str) -> None:
    partial = {k: v for k, v in headers().items() if k != missing}
    with pytest.raises(InvalidSignature, match="missing"):
        Verifier(SECRET).verify(FIELDS, partial, now=NOW)


@pytest.mark.parametrize(("name", "value"), [
    (TIMESTAMP_HEADER, "-5"), (TIMESTAMP_HEADER, "1e9"), (TIMESTAMP_HEADER, "now"),
    (SIGNATURE_HEADER, "zz" * 32), (SIGNATURE_HEADER, SIGNATURE[:-2]),
    (NONCE_HEADER, "short"), (NONCE_HEADER, "has space in it 0123"),
])
def test_malformed_headers_are_refused(name: str, value: str) -> None:
    with pytest.raises(InvalidSignature):
        Verifier(SECRET).verify(FIELDS, {**headers(), name: value}, now=NOW)


def test_a_refused_message_does_not_use_up_its_nonce() -> None:
    """Only a verified message records its nonce: a forgery cannot block the real one."""
    verifier = Verifier(SECRET)
    with pytest.raises(InvalidSignature):
        verifier.verify(FIELDS, headers("0" * 64), now=NOW)
    verifier.verify(FIELDS, headers(), now=NOW)


def test_control_characters_cannot_smuggle_lines_into_the_signed_form() -> None:
    with pytest.raises(ValueError, match="control"):
        canonical(MessageFields("c-1", "hi", "demo-closed\nzh-CN", ""), NOW, NONCE)
    with pytest.raises(InvalidSignature, match="control"):
        Verifier(SECRET).verify(MessageFields("c-1\n", "hi", "", ""), headers(), now=NOW)
    # the text is only hashed: any character is fine there
    assert canonical(MessageFields("c-1", "a\nb", "", ""), NOW, NONCE).count(b"\n") == 6


def test_no_secret_no_signing() -> None:
    with pytest.raises(ValueError):
        signature("", FIELDS, NOW, NONCE)
    with pytest.raises(ValueError):
        Verifier("")


def test_the_nonce_cache_forgets_expired_nonces_and_is_bounded() -> None:
    cache = NonceCache(max_entries=2)
    cache.add("a" * 16, expires=100, now=0)
    cache.add("b" * 16, expires=200, now=0)
    with pytest.raises(InvalidSignature, match="full"):
        cache.add("c" * 16, expires=300, now=50)  # fail closed: never forget a live nonce
    with pytest.raises(InvalidSignature, match="replay"):
        cache.add("a" * 16, expires=400, now=99)
    cache.add("c" * 16, expires=300, now=150)  # "a" expired and was pruned
    assert len(cache) == 2
    cache.add("a" * 16, expires=500, now=250)  # "a" and "b" gone: reusable after expiry
    assert len(cache) == 2


def test_a_nonce_is_remembered_as_long_as_its_timestamp_is_acceptable() -> None:
    verifier = Verifier(SECRET, window=60)
    verifier.verify(FIELDS, headers(), now=NOW - 60)   # earliest acceptable moment
    with pytest.raises(InvalidSignature, match="replay"):
        verifier.verify(FIELDS, headers(), now=NOW + 60)  # latest acceptable moment
    with pytest.raises(InvalidSignature, match="window"):
        verifier.verify(FIELDS, headers(), now=NOW + 61)
