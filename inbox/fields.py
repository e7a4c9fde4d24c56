from __future__ import annotations

import re

from django.core import validators
from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import lookups

UINT64_MAX = 2**64 - 1
_OFFSET = 2**63
_DIGITS = re.compile(r"[0-9]{1,20}")


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

    def formfield(self, **kwargs):
        # BigIntegerField's form bounds are the signed range: half the real ids would not pass.
        return super().formfield(**{"min_value": 0, "max_value": UINT64_MAX, **kwargs})


@Uint64Field.register_lookup
class Uint64IExact(lookups.Exact):
    """`iexact` (what admin's `=field` search uses) compares other columns as text with the term
    as typed, which here would be the shifted stored value and never match. Numbers have no
    case: this is `exact`, and a term that is no unsigned 64-bit number matches nothing instead
    of failing the query it is part of."""

    lookup_name = "iexact"

    def get_prep_lookup(self):
        self.matches_nothing = False
        if not hasattr(self.rhs, "resolve_expression"):
            text = str(self.rhs).strip()
            if _DIGITS.fullmatch(text) and int(text) <= UINT64_MAX:
                self.rhs = int(text)
            else:
                self.matches_nothing, self.rhs = True, 0
        return super().get_prep_lookup()

    def as_sql(self, compiler, connection):
        if self.matches_nothing:
            raise EmptyResultSet
        # Lookup's process_lhs, not BuiltinLookup's, which would wrap the column in UPPER(::text).
        lhs_sql, lhs_params = lookups.Lookup.process_lhs(self, compiler, connection)
        rhs_sql, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs_sql} = {rhs_sql}", [*lhs_params, *rhs_params]
