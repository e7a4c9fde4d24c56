from __future__ import annotations

from django.core import validators
from django.db import models

UINT64_MAX = 2**64 - 1
_OFFSET = 2**63


class Uint64Field(models.BigIntegerField):
    """An unsigned 64-bit integer, stored exactly in a signed BIGINT column.

    WeChat's NewMsgId uses the full unsigned range; PostgreSQL and SQLite only have signed 64-bit
    integers, and decimals would be rounded through floats on SQLite. Shifting by 2**63 maps
    0..2**64-1 onto the signed range one to one and keeps the order, so ranges and indexes still
    work.
    """

    description = "Unsigned 64-bit integer"

    @property
    def validators(self):
        return [validators.MinValueValidator(0), validators.MaxValueValidator(UINT64_MAX)]

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return None
        if not 0 <= value <= UINT64_MAX:
            raise ValueError(f"{value} is outside the unsigned 64-bit range")
        return value - _OFFSET

    def from_db_value(self, value, expression, connection):
        return None if value is None else value + _OFFSET
