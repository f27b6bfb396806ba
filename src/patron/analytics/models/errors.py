"""Errors of the buy-till-you-die models (stable codes; adapters render them as problem+json)."""

from __future__ import annotations

from patron.core.errors import PatronError, ValidationFailed


class InvalidSummary(ValidationFailed):
    """The per-customer summary handed to a model is malformed (shape, sign, recency > T, ...)."""

    code = "invalid_model_input"
    title = "Invalid model input"


class NotEnoughData(ValidationFailed):
    """Too few customers with repeat purchases to estimate a model."""

    code = "not_enough_data"
    title = "Not enough data for the model"


class ModelFitFailed(PatronError):
    """The optimiser did not reach a maximum of the likelihood."""

    status = 422
    code = "model_fit_failed"
    title = "The model could not be fitted"


class ModelNotFitted(PatronError):
    """A prediction was asked of a model that has not been fitted."""

    status = 409
    code = "model_not_fitted"
    title = "The model has not been fitted"
