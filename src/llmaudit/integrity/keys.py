"""Ed25519 keys for signed checkpoints: generating a pair, loading a signing key (a file, or the key's
own text from a secret manager's environment variable) and public keys to verify with.

A key is named by its *key id*: the SHA-256 of its public key's DER ``SubjectPublicKeyInfo`` (as RFC
6962 names a log), hex. Needs the ``cryptography`` package (``pip install 'llmaudit-sdk[signing]'``);
nothing else in llmaudit imports it, so recording works without it. No network, no state: files are
read when asked, and a private key is written only by `generate_keypair`, mode 0600, never over an
existing file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from .._errors import ConfigurationError

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError(
        "signed checkpoints need the 'cryptography' package: pip install 'llmaudit-sdk[signing]'"
    ) from exc

__all__ = [
    "PASSPHRASE_ENV",
    "SIGNING_KEY_ENV",
    "KeyFiles",
    "SigningKey",
    "VerifyKey",
    "generate_keypair",
    "key_id",
    "load_public_key",
    "load_signing_key",
    "public_keys",
    "signing_key_from_env",
]

#: The signing key: a path to its PEM file, or the PEM text itself.
SIGNING_KEY_ENV = "LLMAUDIT_SIGNING_KEY"
#: The passphrase of an encrypted signing key.
PASSPHRASE_ENV = "LLMAUDIT_SIGNING_KEY_PASSPHRASE"  # noqa: S105 - a variable's name, not a secret
PRIVATE_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
_PEM_START = b"-----BEGIN "


def key_id(public: Ed25519PublicKey) -> str:
    """SHA-256 of the public key's DER SubjectPublicKeyInfo, hex."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


class VerifyKey:
    """A public key checkpoints are verified with."""

    __slots__ = ("_public", "key_id")

    def __init__(self, public: Ed25519PublicKey) -> None:
        self._public = public
        self.key_id = key_id(public)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether *signature* is this key's Ed25519 signature of *message*."""
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def pem(self) -> bytes:
        return self._public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        return f"VerifyKey({self.key_id[:16]}…)"


class SigningKey:
    """A private key that signs checkpoints (`checkpoints.Signer`). Its repr shows the key id only."""

    __slots__ = ("_private", "key_id", "public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = VerifyKey(private.public_key())
        self.key_id = self.public.key_id

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def pem(self, passphrase: bytes | None = None) -> bytes:
        """The private key as PKCS #8 PEM, encrypted with *passphrase* when one is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id[:16]}…)"

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        """Pickled as its PEM: the process writer hands the key to its own child over a pipe."""
        return (_signing_key_from_pem, (self.pem(),))


def _signing_key_from_pem(pem: bytes) -> SigningKey:
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    return SigningKey(private)


class KeyFiles(NamedTuple):
    """What `generate_keypair` wrote."""

    private: Path
    public: Path
    key_id: str


def generate_keypair(directory: str | os.PathLike[str], *, passphrase: bytes | None = None) -> KeyFiles:
    """A new Ed25519 key pair in *directory* (created 0700 if missing): the private key
    (`PRIVATE_KEY_FILE`, mode 0600, encrypted when a *passphrase* is given) and the public key
    (`PUBLIC_KEY_FILE`, 0644, the one to hand to auditors).

    Raises:
        ConfigurationError: a key file is already there (never overwritten), or it cannot be written.
    """
    folder = Path(directory)
    key = SigningKey.generate()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        private, public = folder / PRIVATE_KEY_FILE, folder / PUBLIC_KEY_FILE
        for path in (private, public):
            if path.exists():
                raise ConfigurationError(f"{path} exists already: not overwriting a key")
        _write_new(private, key.pem(passphrase), 0o600)
        _write_new(public, key.public.pem(), 0o644)
    except OSError as exc:
        raise ConfigurationError(f"cannot write the key pair into {folder}: {exc}") from exc
    return KeyFiles(private, public, key.key_id)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fchmod(fd, mode)  # the umask may have taken bits off (0644 for the public key)
        os.fsync(fd)
    finally:
        os.close(fd)


def _pem(value: str | bytes | os.PathLike[str], what: str) -> bytes:
    """The PEM text of *value*: itself when it is one, else the file it names."""
    if isinstance(value, (str, bytes)):
        data = value.encode() if isinstance(value, str) else value
        if data.lstrip().startswith(_PEM_START):
            return data.strip() + b"\n"
        value = os.fsdecode(data)
    try:
        return Path(value).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {os.fspath(value)!r}: {exc.strerror}") from exc


def load_signing_key(value: str | bytes | os.PathLike[str], passphrase: bytes | None = None) -> SigningKey:
    """The signing key in *value*: a path to a PEM file, or the PEM text itself.

    Raises:
        ConfigurationError: unreadable, not an Ed25519 private key, or the passphrase is wrong or missing.
    """
    data = _pem(value, "signing key")
    try:
        private = serialization.load_pem_private_key(data, password=passphrase or None)
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise ConfigurationError(f"signing key: {exc} (see {PASSPHRASE_ENV})") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError("signing key: not a PEM private key, or the passphrase is wrong") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise ConfigurationError("signing key: not an Ed25519 key (make one with `llmaudit keys generate`)")
    return SigningKey(private)


def load_public_key(value: str | bytes | os.PathLike[str]) -> VerifyKey:
    """The public key in *value* (a path or the PEM text).

    Raises:
        ConfigurationError: unreadable, or not an Ed25519 public key.
    """
    data = _pem(value, "public key")
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError("public key: not a PEM public key") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise ConfigurationError("public key: not an Ed25519 key")
    return VerifyKey(public)


def public_keys(values: Iterable[str | bytes | os.PathLike[str] | VerifyKey]) -> dict[str, VerifyKey]:
    """Public keys by key id (several after a rotation: each checkpoint names its own)."""
    keys = [v if isinstance(v, VerifyKey) else load_public_key(v) for v in values]
    return {k.key_id: k for k in keys}


def signing_key_from_env(environ: Mapping[str, str] | None = None) -> SigningKey | None:
    """The key `SIGNING_KEY_ENV` holds or names (None when unset), decrypted with `PASSPHRASE_ENV`.

    Raises:
        ConfigurationError: the key cannot be loaded.
    """
    env = os.environ if environ is None else environ
    value = env.get(SIGNING_KEY_ENV)
    if not value:
        return None
    passphrase = env.get(PASSPHRASE_ENV)
    return load_signing_key(value, passphrase.encode() if passphrase else None)
