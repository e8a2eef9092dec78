"""What a model field says about its values: its default, its bounds, its size.

A setting stored on a model is defined once, on its field (as Django keeps a setting's default in
``global_settings``). Whatever mirrors the model (the routing snapshot's dataclasses, the config file
parser, its README table) reads the default and the bounds from here instead of writing them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import DecimalField, Field, Model

Number = int | float | Decimal


@dataclass(frozen=True, slots=True)
class Bounds:
    """Inclusive; None: unbounded on that side."""

    minimum: Number | None = None
    maximum: Number | None = None


def model_field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise TypeError(f"{model.__name__}.{name} is a reverse relation, not a field")
    return field


def default_of(model: type[Model], name: str) -> Any:
    """The value a new row gets when none is given (None for a nullable field without a default)."""
    return model_field(model, name).get_default()


def bounds_of(model: type[Model], name: str) -> Bounds:
    """The tightest of the field's MinValueValidators and MaxValueValidators, which for integer fields
    include the column's range (0 to 32767 for a PositiveSmallIntegerField): what admin's forms accept."""
    minimum: Number | None = None
    maximum: Number | None = None
    for validator in model_field(model, name).validators:
        if isinstance(validator, MinValueValidator):
            limit = validator.limit_value
            minimum = limit if minimum is None or limit > minimum else minimum
        elif isinstance(validator, MaxValueValidator):
            limit = validator.limit_value
            maximum = limit if maximum is None or limit < maximum else maximum
    return Bounds(minimum, maximum)


def decimal_shape(model: type[Model], name: str) -> tuple[int, Decimal]:
    """A DecimalField's decimal places and the first value its column cannot hold."""
    field = model_field(model, name)
    if not isinstance(field, DecimalField) or field.max_digits is None or field.decimal_places is None:
        raise TypeError(f"{model.__name__}.{name} is not a DecimalField")
    return field.decimal_places, Decimal(10) ** (field.max_digits - field.decimal_places)
