from django.db import models


class Account(models.Model):
    """The publisher's state: changed in the same transaction as the event is recorded."""

    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Credit(models.Model):
    """The consumer's effect: one row per handled `ledger.credited` event."""

    account = models.CharField(max_length=50)
    amount = models.IntegerField()
    event_id = models.UUIDField()
    correlation_id = models.CharField(max_length=128, blank=True)

    def __str__(self) -> str:
        return f"{self.account} +{self.amount}"
