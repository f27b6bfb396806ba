"""A plain-language summary of the analysis in en/vi/hu/th (through gettext), flagging what needs
attention — e.g. annual churn above 7 %, the threshold the source articles give for reviewing
customer satisfaction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from patron.analytics.runner import Analysis
from patron.core.i18n import format_date, format_decimal, format_money, gettext_for
from patron.core.money import Money, is_known_currency

CHURN_ALERT = Decimal("0.07")


@dataclass(frozen=True)
class Sentence:
    text: str
    attention: bool = False


def _percent(value: Decimal, language: str) -> str:
    return format_decimal((value * 100).quantize(Decimal("0.1")), language) + " %"


def _amount(value: Decimal, currency: str | None, language: str) -> str:
    if currency and is_known_currency(currency):
        return format_money(Money(value, currency), language)
    return format_decimal(value.quantize(Decimal("0.01")), language)


def summarise(analysis: Analysis, language: str) -> list[Sentence]:
    _ = gettext_for(language)
    out: list[Sentence] = []
    k = analysis.kpis
    out.append(
        Sentence(
            _("Analysis as of %(date)s: %(transactions)s transactions.")
            % {
                "date": format_date(analysis.as_of, language),
                "transactions": format_decimal(analysis.source.transactions, language),
            }
        )
    )
    if k is not None:
        out.append(
            Sentence(
                _("%(customers)s customers placed %(orders)s orders; the average order was worth %(aov)s.")
                % {
                    "customers": format_decimal(k["customers"], language),
                    "orders": format_decimal(k["orders"], language),
                    "aov": _amount(k["average_order_value"] or Decimal(0), analysis.currency, language),
                }
            )
        )
        churn = k["churn_rate"]
        if churn is None:
            out.append(
                Sentence(
                    _("Churn over the last 12 months is undefined: no customer was active at its start.")
                )
            )
        elif churn > CHURN_ALERT:
            out.append(
                Sentence(
                    _(
                        "Annual churn is %(churn)s, above the 7 %% threshold: review customer satisfaction "
                        "and what makes customers leave."
                    )
                    % {"churn": _percent(churn, language)},
                    attention=True,
                )
            )
        else:
            out.append(
                Sentence(
                    _("Annual churn is %(churn)s, within the 7 %% threshold.")
                    % {"churn": _percent(churn, language)}
                )
            )
        repeat = k["repeat_purchase_rate"]
        if repeat is not None:
            out.append(
                Sentence(
                    _("%(rate)s of customers ordered more than once.") % {"rate": _percent(repeat, language)},
                    attention=repeat < Decimal("0.2"),
                )
            )
        ratio = k["new_vs_returning"]["repeat_to_first_ratio"]
        if ratio is not None:
            out.append(
                Sentence(
                    _("Repeat orders are worth %(ratio)s times first orders on average.")
                    % {"ratio": format_decimal(ratio.quantize(Decimal("0.01")), language)}
                )
            )
    if analysis.rfm is not None:
        segments = analysis.rfm["segments"]
        risk = sum(segments[name]["customers"] for name in ("At risk", "Can't lose them"))
        total = analysis.rfm["customers"] or 1
        share = Decimal(risk) / Decimal(total)
        out.append(
            Sentence(
                _("%(share)s of customers are at risk or must not be lost: win them back first.")
                % {"share": _percent(share, language)},
                attention=share > Decimal("0.15"),
            )
        )
    if analysis.holdout is not None:
        predicted = analysis.holdout["predicted_repeat_purchases"].get("bg_nbd")
        if predicted is not None:
            out.append(
                Sentence(
                    _(
                        "In the holdout period the model expected %(predicted)s repeat purchases; "
                        "there were %(actual)s."
                    )
                    % {
                        "predicted": format_decimal(Decimal(str(round(predicted, 1))), language),
                        "actual": format_decimal(analysis.holdout["actual_repeat_purchases"], language),
                    }
                )
            )
    if analysis.fitted is not None and analysis.fitted.problems:
        out.append(
            Sentence(
                _("Some models could not be fitted (too little data); the rest of the analysis is complete."),
                attention=True,
            )
        )
    return out
