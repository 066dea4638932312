"""kms:gcp: and kms:azure: envelopes, with hand-written fakes of the SDK clients.

No Cloud KMS or Key Vault emulator runs here, so these fakes keep the SDK
method names and arguments (``encrypt(name=, plaintext=)``, ``wrap_key(alg,
key)``...) and fail the way the SDKs do; kms:aws: is tested on moto instead
(tests/e2e/test_kms_envelope.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from google.api_core import exceptions as gexc

from drorch.ports.errors import SecretError
from drorch.providers.azure_kms import AzureKms
from drorch.providers.gcp_kms import GcpKms
from drorch.providers.local import LocalStore
from drorch.secrets import ENVELOPE, KmsEnvelope

KEY = "projects/p/locations/eu/keyRings/dr/cryptoKeys/repo"
VAULT_KEY = "https://dr.vault.azure.net/keys/repo"


def _xor(data: bytes, key: str) -> bytes:
    pad = (key.encode() * (len(data) // len(key) + 1))[: len(data)]
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


@dataclass
class _GcpReply:
    ciphertext: bytes = b""
    plaintext: bytes = b""


class FakeCloudKms:
    """KeyManagementServiceClient's encrypt/decrypt for the keys it holds."""

    def __init__(self, keys: set[str], denied: bool = False) -> None:
        self.keys = keys
        self.denied = denied

    def _check(self, name: str) -> None:
        if self.denied:
            raise gexc.PermissionDenied("caller lacks cloudkms.cryptoKeyVersions.useToEncrypt")
        if name not in self.keys:
            raise gexc.NotFound(f"{name} not found")

    def encrypt(self, *, name: str, plaintext: bytes) -> _GcpReply:
        self._check(name)
        return _GcpReply(ciphertext=name.encode() + b"|" + _xor(plaintext, name))

    def decrypt(self, *, name: str, ciphertext: bytes) -> _GcpReply:
        self._check(name)
        owner, _, body = ciphertext.partition(b"|")
        if owner != name.encode():
            raise gexc.InvalidArgument("Decryption failed: the ciphertext is invalid")
        return _GcpReply(plaintext=_xor(body, name))


@dataclass
class _Wrapped:
    encrypted_key: bytes = b""
    key: bytes = b""


class FakeKeyVault:
    """CryptographyClient's wrap_key/unwrap_key for one key."""

    def __init__(self, exists: bool = True, status: int | None = None) -> None:
        self.exists = exists
        self.status = status

    def _check(self) -> None:
        if not self.exists:
            raise ResourceNotFoundError("A key with (name/id) repo was not found in this key vault")
        if self.status:
            error = HttpResponseError("Forbidden")
            error.status_code = self.status
            raise error

    def wrap_key(self, algorithm: object, key: bytes) -> _Wrapped:
        self._check()
        return _Wrapped(encrypted_key=_xor(key, str(algorithm)))

    def unwrap_key(self, algorithm: object, encrypted_key: bytes) -> _Wrapped:
        self._check()
        return _Wrapped(key=_xor(encrypted_key, str(algorithm)))


@pytest.mark.parametrize("make", [lambda: GcpKms(KEY, client=FakeCloudKms({KEY})),
                                  lambda: AzureKms(VAULT_KEY, client=FakeKeyVault())],
                         ids=["gcp", "azure"])
def test_envelope_round_trip_never_stores_the_data_key(make, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "repo")
    created = KmsEnvelope(make()).password(store, create=True)
    envelope = (tmp_path / "repo" / ENVELOPE).read_bytes()
    assert len(created) == 64 and created not in envelope
    assert KmsEnvelope(make()).password(store) == created


@pytest.mark.parametrize(("kms", "message"), [
    (GcpKms(KEY, client=FakeCloudKms(set())), f"KMS key {KEY} cannot generate a data key: NotFound; "
     "check the key name in encryption.key (projects/.../cryptoKeys/NAME)"),
    (GcpKms(KEY, client=FakeCloudKms({KEY}, denied=True)), f"KMS key {KEY} cannot generate a data key: "
     "PermissionDenied; grant roles/cloudkms.cryptoKeyEncrypterDecrypter on the key to this identity"),
    (AzureKms(VAULT_KEY, client=FakeKeyVault(exists=False)), f"KMS key {VAULT_KEY} cannot generate a data "
     "key: HTTP 404; check the key URL in encryption.key"),
    (AzureKms(VAULT_KEY, client=FakeKeyVault(status=403)), f"KMS key {VAULT_KEY} cannot generate a data "
     "key: HTTP 403; grant 'Key Vault Crypto User' (wrapKey, unwrapKey) on the key to this identity"),
], ids=["gcp-missing", "gcp-denied", "azure-missing", "azure-denied"])
def test_unusable_key_is_one_sentence(kms, message: str, tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        KmsEnvelope(kms).password(LocalStore(tmp_path / "repo"), create=True)
    assert str(caught.value) == message
    assert caught.value.exit_code == 1


def test_another_gcp_key_cannot_unwrap(tmp_path: Path) -> None:
    other = KEY.replace("repo", "other")
    fake = FakeCloudKms({KEY, other})
    store = LocalStore(tmp_path / "repo")
    KmsEnvelope(GcpKms(KEY, client=fake)).password(store, create=True)
    store.put("config", b"x")  # a repository exists there, so the envelope is what is wrong
    with pytest.raises(SecretError, match="cannot decrypt the repository key: InvalidArgument; the envelope "
                                          "was made with another key"):
        KmsEnvelope(GcpKms(other, client=fake)).password(store)
