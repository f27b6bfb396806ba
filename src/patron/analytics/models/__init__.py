"""Buy-till-you-die models fitted by maximum likelihood: BG/NBD, Pareto/NBD, Gamma-Gamma, and CLV.

m = BetaGeoModel().fit(frequency, recency, T)   # repeat occasions; times from the first occasion
m.params_, m.log_likelihood_                     # total log-likelihood
m.conditional_probability_alive(frequency, recency, T)
m.conditional_expected_number_of_purchases_up_to_time(t, frequency, recency, T)
g = GammaGammaModel().fit(frequency, mean_spend)
customer_lifetime_value(m, frequency, recency, T, expected_spend, time_unit_days=7,
                        horizon_months=12, discount_rate_annual=0.10)
"""

from patron.analytics.models._base import TransactionModel
from patron.analytics.models.bg_nbd import BetaGeoModel
from patron.analytics.models.clv import DAYS_PER_MONTH, customer_lifetime_value
from patron.analytics.models.errors import InvalidSummary, ModelFitFailed, ModelNotFitted, NotEnoughData
from patron.analytics.models.gamma_gamma import GammaGammaModel
from patron.analytics.models.holdout import FrequencyBin, HoldoutResult, holdout_by_frequency
from patron.analytics.models.pareto_nbd import ParetoNBDModel

__all__ = [
    "DAYS_PER_MONTH",
    "BetaGeoModel",
    "FrequencyBin",
    "GammaGammaModel",
    "HoldoutResult",
    "InvalidSummary",
    "ModelFitFailed",
    "ModelNotFitted",
    "NotEnoughData",
    "ParetoNBDModel",
    "TransactionModel",
    "customer_lifetime_value",
    "holdout_by_frequency",
]
