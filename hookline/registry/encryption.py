"""Webhook records encrypted at rest with the keys of HOOKLINE_SECRET_KEYS (Fernet, rotatable)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from hookline.errors import ConfigurationError, RegistryError

SECRET_KEYS_VARIABLE = "HOOKLINE_SECRET_KEYS"  # noqa: S105 - a variable name, not a key
GENERATE_KEY_HINT = (
    'make a key with `hookline secrets generate-key` (or `python -c "from cryptography.fernet '
    'import Fernet; print(Fernet.generate_key().decode())"`)'
)


class RecordDecryptionError(RegistryError):
    """A stored record was encrypted with a key that HOOKLINE_SECRET_KEYS no longer lists."""

    def __init__(self) -> None:
        super().__init__(
            f"a stored webhook cannot be decrypted with any key of {SECRET_KEYS_VARIABLE}: "
            "was the key it was written with removed? Keep old keys listed after the new one "
            "until `hookline secrets rotate` has run"
        )


class RecordCipher:
    """Encrypts with the first key, decrypts with any of them (MultiFernet).

    To rotate: put a new key first and keep the old ones after it; each record is written with
    the new key on its next write, or at once by `hookline secrets rotate`; then drop the old keys.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(f"{SECRET_KEYS_VARIABLE} holds no key; {GENERATE_KEY_HINT}")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key))
            except ValueError:
                # The message never quotes the key: it is a secret even when malformed.
                raise ConfigurationError(
                    f"{SECRET_KEYS_VARIABLE}: key {position} of {len(keys)} is not a Fernet key "
                    f"(32 bytes in url-safe base64); {GENERATE_KEY_HINT}"
                ) from None
        self._fernet = MultiFernet(fernets)

    @staticmethod
    def generate_key() -> str:
        """A new random key for HOOKLINE_SECRET_KEYS."""
        return Fernet.generate_key().decode()

    def encrypt(self, text: str) -> str:
        """`text` as a token of the first key."""
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The text of a token of any key; RecordDecryptionError if none of them wrote it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise RecordDecryptionError() from None

    def rotate(self, token: str) -> str:
        """The same text as a token of the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise RecordDecryptionError() from None


def record_cipher(secret_keys: SecretStr | None) -> RecordCipher:
    """The cipher of HOOKLINE_SECRET_KEYS; ConfigurationError if it is unset or not valid."""
    if secret_keys is None:
        raise ConfigurationError(
            f"{SECRET_KEYS_VARIABLE} is not set: the API and the worker need it to encrypt and "
            f"decrypt the secrets of webhooks in Redis; {GENERATE_KEY_HINT}"
        )
    text = secret_keys.get_secret_value()
    return RecordCipher([key.strip() for key in text.split(",") if key.strip()])
