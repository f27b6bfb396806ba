"""Sign-up from a referral landing page (``/r/{code}``).

The new customer is created through the customers API with ``referral_code`` set, so loyalty's
attribution (on ``customer.created``) runs with all its guards: self-referral by the same email or
phone, the referrer's cap. Marketing consent, when ticked, is appended to the consent ledger with its
proof (source ``portal``; the client's IP address, user agent, the time and the wording agreed to).

**An email that already belongs to a customer** creates nothing and changes nothing of that
customer's data: the result is ``existing`` (the page shows a neutral confirmation and opens no
portal session); a ``portal.signup_repeated`` entry goes on that customer's timeline so staff can
follow up. See docs/portal.md for what this does and does not hide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from patron.core.clock import now
from patron.core.i18n import N_
from patron.customers import (
    CustomerCreateInput,
    DuplicateEmail,
    create_customer,
    get_customer,
    record_consent,
    record_interaction,
)
from patron.loyalty import referrer_of_code

#: the wording of the consent checkbox, stored with the proof (English: the msgid the page translates)
MARKETING_CONSENT_TEXT = N_("Send me offers and news by email. I can unsubscribe at any time.")


@dataclass(frozen=True)
class SignUp:
    first_name: str
    last_name: str
    email: str
    language: str
    phone: str | None = None
    country: str | None = None
    marketing: bool = False
    referral_code: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    #: the consent wording exactly as shown (translated) and the language of the page that showed it
    consent_text: str = MARKETING_CONSENT_TEXT
    consent_language: str | None = None


@dataclass(frozen=True)
class SignUpResult:
    #: ``created`` (a new customer: open their portal) or ``existing`` (the email is taken)
    status: str
    customer_id: str | None


def referrer_given_name(session: Session, code: str) -> str | None:
    """The given name of the customer whose referral code this is — the only thing the landing page
    shows of them — or None for an unknown code."""
    referrer = referrer_of_code(session, code)
    if referrer is None:
        return None
    name = get_customer(session, referrer).given_name.strip()
    return name or None


def sign_up(session: Session, data: SignUp) -> SignUpResult:
    """Create the customer (validation errors propagate as ``ValidationFailed`` with field locations)."""
    code = data.referral_code.strip().upper() if data.referral_code else None
    if code and referrer_of_code(session, code) is None:
        code = None  # unknown code: sign up without a referral
    try:
        customer = create_customer(
            session,
            CustomerCreateInput(
                first_name=data.first_name,
                last_name=data.last_name,
                email=data.email,
                phone=data.phone or None,
                country=data.country or None,
                language=data.language,
                preferred_channel="email",
                referral_code=code,
                attributes={"signup_source": "portal"},
            ),
        )
    except DuplicateEmail as exc:
        owner = exc.extra.get("customer_id")
        if isinstance(owner, str):
            record_interaction(
                session,
                owner,
                channel="web",
                direction="inbound",
                kind="portal.signup_repeated",
                summary="Someone signed up on the referral page with this customer's email",
                data={"referral_code": code},
                source="portal",
            )
        return SignUpResult("existing", None)
    if data.marketing:
        record_consent(
            session,
            customer.id,
            purpose="marketing",
            channel="email",
            status="granted",
            source="portal",
            proof=json.dumps(
                {
                    "form": "referral_signup",
                    "ip": data.ip,
                    "user_agent": (data.user_agent or "")[:500],
                    "at": now().isoformat(),
                    "text": data.consent_text,
                    "language": data.consent_language or data.language,
                },
                ensure_ascii=False,
            ),
        )
    return SignUpResult("created", customer.id)


__all__ = ["MARKETING_CONSENT_TEXT", "SignUp", "SignUpResult", "referrer_given_name", "sign_up"]
