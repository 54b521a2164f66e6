"""Which recipients of a multi-recipient delivery already have it, so that a retry skips them.

SMS and email send one delivery to several numbers or addresses. When some of them fail, the
delivery fails and is retried; without a ledger the retry would reach again everyone who already
got it (Twilio's Messages API has no idempotency key: a second text is a second text)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from hookline.errors import DeliveryError
from hookline.schemas.deliveries import Notification

logger = logging.getLogger(__name__)


class RecipientLedger(Protocol):
    """Remembers, per delivery, the recipients it has reached."""

    async def reached(self, org: str, delivery_id: str, recipients: Sequence[str]) -> set[str]:
        """Which of `recipients` an earlier attempt at this delivery reached."""
        ...

    async def note_reached(self, org: str, delivery_id: str, recipients: Sequence[str]) -> None:
        """Remember that this delivery reached `recipients`."""
        ...


async def still_due(
    ledger: RecipientLedger | None, notification: Notification, recipients: Sequence[str]
) -> list[str]:
    """The recipients an earlier attempt at this delivery did not reach, in their order.

    A retryable DeliveryError if the ledger cannot be read: sending to all could repeat, and
    sending to none could lose, so the attempt waits for a later try."""
    if ledger is None:
        return list(recipients)
    try:
        reached = await ledger.reached(_org(notification), notification.delivery_id, recipients)
    except Exception as exc:  # any: the ledger's store is down or refuses
        raise DeliveryError(
            f"could not read which recipients already have this delivery: {exc!r}",
            retryable=True,
        ) from exc
    return [recipient for recipient in recipients if recipient not in reached]


async def note_reached(
    ledger: RecipientLedger | None, notification: Notification, recipients: Sequence[str]
) -> None:
    """Remember the recipients a failed attempt reached; if that fails, a retry repeats them."""
    if ledger is None or not recipients:
        return
    try:
        await ledger.note_reached(_org(notification), notification.delivery_id, recipients)
    except Exception:  # any: the attempt has failed already, and its error is the news
        logger.warning(
            "could not note the recipients delivery %s reached; a retry sends to them again",
            notification.delivery_id,
            exc_info=True,
        )


def _org(notification: Notification) -> str:
    return notification.event.internal_id
