"""Build the demo plan: every customer, order, subscription, consent and timeline entry of the demo
business, as plain records. Pure and deterministic: the same options and end date give the same plan
(one ``random.Random(seed)`` drives every choice, in a fixed order)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from patron.core.money import quantize
from patron.demo.contracts import (
    DemoOptions,
    DemoPlan,
    PlannedConsent,
    PlannedCustomer,
    PlannedFxRate,
    PlannedInteraction,
    PlannedLine,
    PlannedMarket,
    PlannedOrder,
    PlannedOrganisation,
    PlannedProduct,
    PlannedRefund,
    PlannedSegment,
    PlannedSubscription,
)
from patron.demo.data import PEOPLE, PeopleTable
from patron.demo.data.calendar import LUNAR_NEW_YEAR
from patron.demo.data.catalog import PLANS, PRODUCTS, ProductSpec
from patron.demo.data.markets import (
    BUSINESS_NAME,
    BUSINESS_TIME_ZONE,
    COUNTRY_SHARES,
    FX_START,
    MARKET_BY_CODE,
    MARKET_FOR_COUNTRY,
    MARKETS,
    REPORTING_CURRENCY,
    MarketSpec,
)
from patron.demo.data.organisations import CONTACT_ROLES, ORGANISATIONS
from patron.demo.data.wording import (
    CHAT_CHANNEL,
    CONSENT_PROOFS,
    EXTRA_TAGS,
    INTERACTIONS,
    INTEREST_TAGS,
)
from patron.demo.rules import (
    day_weight,
    email_local_part,
    local_price,
    mobile_number,
    pick,
    romanise,
    split_counts,
)

# shares of customer behaviour (per cent)
HOUSEHOLD_SHARE = 4  # family members sharing a phone
DUPLICATE_SHARE = 1  # the same person registered twice
EXPAT_SHARE = 6  # Vietnamese-born customers living in Hungary (of HU customers)
NEVER_BOUGHT = 22
SUBSCRIBER_SHARE = 9
REFUND_SHARE = 4
LATE_SHARE = 8
CANCELLED_SHARE = 2

# local hour of day when orders are placed (7:00–23:00), evening peak
_HOURS: tuple[tuple[int, int], ...] = tuple(
    (h, w) for h, w in zip(range(7, 24), (2, 4, 6, 7, 7, 8, 8, 6, 6, 6, 7, 8, 10, 12, 12, 9, 5), strict=True)
)
_DELIVERY_DAYS: dict[str, tuple[int, int]] = {
    "VN": (1, 4),
    "HU": (1, 3),
    "TH": (1, 4),
    "EU": (2, 6),
    "US": (3, 7),
}
_REFUND_REASONS: tuple[tuple[str, str, int], ...] = (
    ("Damaged in transit", "return", 35),
    ("Wrong item sent", "return", 20),
    ("Changed mind", "return", 25),
    ("Arrived too late", "refund", 20),
)
_SIGNUP_SOURCES: tuple[tuple[str, int], ...] = (
    ("web_signup", 45),
    ("checkout", 20),
    ("store_form", 20),
    ("app_settings", 15),
)
_ACQUISITION: tuple[tuple[str, int], ...] = (
    ("organic", 35),
    ("facebook", 15),
    ("instagram", 12),
    ("google", 15),
    ("referral", 10),
    ("marketplace", 8),
    ("event", 5),
)
_SUPPORT_AGENTS: dict[str, tuple[str, ...]] = {
    "vi": ("Trần Thu Hà", "Lê Minh Khoa"),
    "hu": ("Szabó Réka", "Tóth Gergő"),
    "th": ("ปวีณา ศรีสุข", "ธนากร บุญมา"),
    "en": ("Emma Wilson", "Jonas Weber"),
}


@dataclass
class _Person:
    customer: PlannedCustomer
    sex: str
    age: int | None
    interests: tuple[str, ...]
    buyer: bool
    rate: float  # orders per year while active
    churn_at: datetime
    b2b: bool = False


def build_plan(options: DemoOptions, *, now: datetime) -> DemoPlan:
    """The whole demo business for ``options``, with history up to ``now`` (an aware time)."""
    if options.customers < 1:
        raise ValueError("customers must be at least 1")
    if options.years < 1:
        raise ValueError("years must be at least 1")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    rng = random.Random(options.seed)  # noqa: S311 - demo data, not security
    now = now.astimezone(UTC).replace(microsecond=0)
    end = now.date()
    start = _years_before(end, options.years)
    return _Builder(rng, options, start, end, now).build()


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _at(rng: random.Random, day: date, zone: str) -> datetime:
    """A local time of day on ``day`` in ``zone`` (weighted towards the evening), in UTC."""
    hour = pick(rng, _HOURS)
    local = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=ZoneInfo(zone))
    return local.astimezone(UTC)


class _Builder:
    def __init__(
        self, rng: random.Random, options: DemoOptions, start: date, end: date, now: datetime
    ) -> None:
        self.rng = rng
        self.options = options
        self.start = start
        self.end = end
        self.now = now
        self.start_at = datetime.combine(start, time(0, 0), tzinfo=UTC)
        self.people: list[_Person] = []
        self.by_id: dict[str, _Person] = {}
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.fx: dict[str, Decimal] = {cur: rate for cur, (rate, _) in FX_START.items()}
        self.fx[REPORTING_CURRENCY] = Decimal(1)
        self.prices: dict[tuple[str, str], Decimal] = {}
        self.order_seq: dict[str, int] = {}
        self.orders: list[PlannedOrder] = []
        self.orders_by_customer: dict[str, list[PlannedOrder]] = {}
        self.consents: list[PlannedConsent] = []
        self.interactions: list[PlannedInteraction] = []
        self.subscriptions: list[PlannedSubscription] = []
        self.avg_weight = {m.code: self._average_weight(m.code) for m in MARKETS}
        self.max_weight = {m.code: self._max_weight(m.code) for m in MARKETS}

    # ---- top level -----------------------------------------------------------------------------

    def build(self) -> DemoPlan:
        markets = [
            PlannedMarket(m.code, m.name, m.country, m.currency, m.locale, m.time_zone) for m in MARKETS
        ]
        fx_rates = self._fx_rates()
        products = self._products()
        self._customers()
        organisations = self._organisations()
        for person in self.people:
            self._orders_for(person)
        self._tag_by_value()
        for order in self.orders:
            self.orders_by_customer.setdefault(order.customer_external_id, []).append(order)
        for person in self.people:
            self._consents_for(person)
            self._interactions_for(person)
        self.orders.sort(key=lambda o: (o.placed_at, o.external_id))
        self.interactions.sort(key=lambda i: (i.occurred_at, i.customer_external_id, i.kind))
        return DemoPlan(
            start=self.start,
            end=self.end,
            business_name=BUSINESS_NAME,
            reporting_currency=REPORTING_CURRENCY,
            time_zone=BUSINESS_TIME_ZONE,
            markets=markets,
            fx_rates=fx_rates,
            products=products,
            organisations=organisations,
            customers=[p.customer for p in self.people],
            orders=self.orders,
            subscriptions=self.subscriptions,
            consents=self.consents,
            interactions=self.interactions,
            segments=self._segments(),
        )

    # ---- money ---------------------------------------------------------------------------------

    def _fx_rates(self) -> list[PlannedFxRate]:
        """Monthly EUR rates from the first of the start month, drifting with a little noise."""
        rates: list[PlannedFxRate] = []
        month = date(self.start.year, self.start.month, 1)
        index = 0
        while month <= self.end:
            for currency, (first, drift) in sorted(FX_START.items()):
                trend = (1 + float(drift) / 100) ** (index / 12)
                noise = 1 + self.rng.uniform(-0.012, 0.012)
                value = Decimal(str(round(float(first) * trend * noise, 6)))
                digits = 0 if value > 1000 else 2 if value > 10 else 4
                rates.append(PlannedFxRate(REPORTING_CURRENCY, currency, month, round(value, digits)))
            index += 1
            month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
        return rates

    def _products(self) -> list[PlannedProduct]:
        for spec in PRODUCTS:
            for market in MARKETS:
                self.prices[(spec.sku, market.currency)] = local_price(
                    spec.price_eur, market.currency, self.fx[market.currency]
                )
        return [PlannedProduct(p.sku, p.name, p.category, p.price_eur, REPORTING_CURRENCY) for p in PRODUCTS]

    # ---- customers -----------------------------------------------------------------------------

    def _customers(self) -> None:
        counts = split_counts(self.options.customers, COUNTRY_SHARES)
        number = 0
        for country, _ in COUNTRY_SHARES:
            table = PEOPLE[country]
            local: list[_Person] = []
            for _ in range(counts[country]):
                number += 1
                external_id = f"LL-C{number:05d}"
                roll = self.rng.randrange(100)
                originals = [p for p in local[-200:] if p.customer.duplicate_of is None]
                if originals and roll < HOUSEHOLD_SHARE and any(p.customer.phone for p in originals):
                    head = self.rng.choice([p for p in originals if p.customer.phone])
                    person = self._household_member(external_id, table, head)
                elif originals and roll < HOUSEHOLD_SHARE + DUPLICATE_SHARE:
                    person = self._duplicate(external_id, self.rng.choice(originals))
                else:
                    name_table = table
                    if country == "HU" and self.rng.randrange(100) < EXPAT_SHARE:
                        name_table = PEOPLE["VN"]
                    person = self._new_person(external_id, table, name_table)
                local.append(person)
                self.people.append(person)
                self.by_id[external_id] = person

    def _signup(self) -> datetime:
        if self.rng.randrange(100) < 30:
            day = self.start - timedelta(days=self.rng.randrange(1, 366))
        else:
            span = (self.end - self.start).days
            day = self.start + timedelta(days=int(span * self.rng.random() ** 0.9))
        hour, minute = self.rng.randrange(7, 23), self.rng.randrange(60)
        moment = datetime.combine(day, time(hour, minute), tzinfo=UTC)
        if moment >= self.now:
            moment = self.now - timedelta(minutes=self.rng.randint(30, 20 * 60))
        return moment

    def _birthday(self, age: int) -> date:
        year = self.end.year - age
        return date(year, self.rng.randint(1, 12), self.rng.randint(1, 28))

    def _form_of_address(self, table: PeopleTable, name_table: PeopleTable, sex: str, age: int | None) -> str:
        if name_table.country == "VN" or table.country == "VN":
            if age is not None and age >= 55:
                return "ông" if sex == "m" else "bà"
            return "anh" if sex == "m" else "chị"
        if table.country == "HU":
            return "te" if age is not None and age < 30 and self.rng.random() < 0.5 else "Ön"
        return table.address_male if sex == "m" else table.address_female

    def _name(self, name_table: PeopleTable, sex: str, family: str | None = None) -> tuple[str, str]:
        family = family or pick(self.rng, name_table.family_names)
        given = self.rng.choice(name_table.male_given if sex == "m" else name_table.female_given)
        middles = name_table.male_middle if sex == "m" else name_table.female_middle
        if middles:
            given = f"{self.rng.choice(middles)} {given}"
        return given, family

    def _email(
        self, name_table: PeopleTable, table: PeopleTable, given: str, family: str, year: int | None
    ) -> str:
        given_part = romanise(given.split()[-1], name_table)
        if name_table.male_middle and self.rng.random() < 0.4:  # Vietnamese: nguyenthimai
            given_part = romanise(given, name_table)
        local = email_local_part(self.rng, given_part, romanise(family, name_table), year)
        domain = pick(self.rng, table.email_domains)
        email = f"{local}@{domain}"
        while email in self.used_emails:
            email = f"{local}{self.rng.randint(2, 999)}@{domain}"
        self.used_emails.add(email)
        return email

    def _phone(self, table: PeopleTable) -> str:
        phone = mobile_number(self.rng, table)
        while phone in self.used_phones:
            phone = mobile_number(self.rng, table)
        self.used_phones.add(phone)
        return phone

    def _preferred_channel(self, country: str, email: str | None, phone: str | None) -> str | None:
        options: list[tuple[str, int]] = []
        if email:
            options.append(("email", {"VN": 25, "TH": 20, "HU": 60}.get(country, 80)))
        if phone:
            options.append(("sms", {"VN": 20, "TH": 15, "HU": 25}.get(country, 15)))
            options.append(("phone", 8))
            if country in CHAT_CHANNEL:
                options.append((CHAT_CHANNEL[country], 50))
        options.append(("push", 4))
        return pick(self.rng, options)

    def _new_person(self, external_id: str, table: PeopleTable, name_table: PeopleTable) -> _Person:
        rng = self.rng
        sex = "f" if rng.random() < 0.53 else "m"
        given, family = self._name(name_table, sex)
        age = min(78, max(18, int(rng.gauss(37, 12)))) if rng.random() < 0.82 else None
        birthday = self._birthday(age) if age is not None else None
        email = (
            self._email(name_table, table, given, family, birthday.year if birthday else None)
            if rng.random() < 0.9
            else None
        )
        phone = self._phone(table) if rng.random() < 0.86 or email is None else None
        return self._person(
            external_id, table, name_table, sex, age, given, family, email, phone, birthday, None, None
        )

    def _person(
        self,
        external_id: str,
        table: PeopleTable,
        name_table: PeopleTable,
        sex: str,
        age: int | None,
        given: str,
        family: str,
        email: str | None,
        phone: str | None,
        birthday: date | None,
        city: str | None,
        time_zone: str | None,
    ) -> _Person:
        rng = self.rng
        market = MARKET_FOR_COUNTRY[table.country]
        interests = tuple(rng.sample(INTEREST_TAGS, k=1 + (rng.random() < 0.35)))
        tags = list(interests)
        tags += [tag for tag, share in EXTRA_TAGS if rng.randrange(100) < share]
        city = city or pick(rng, table.cities)
        attributes: dict[str, object] = {
            "city": city,
            "acquisition": pick(rng, _ACQUISITION),
            "signup_source": pick(rng, _SIGNUP_SOURCES),
        }
        if name_table.country != table.country:
            attributes["born_in"] = name_table.country
        customer = PlannedCustomer(
            external_id=external_id,
            market=market,
            given_name=given,
            family_name=family,
            form_of_address=self._form_of_address(table, name_table, sex, age),
            email=email,
            phone=phone,
            language=name_table.language if name_table.country in {"VN", "HU", "TH"} else table.language,
            preferred_channel=self._preferred_channel(table.country, email, phone),
            time_zone=time_zone or pick(rng, table.time_zones),
            country=table.country,
            birthday=birthday,
            signed_up_at=self._signup(),
            tags=tags,
            attributes=attributes,
        )
        if attributes["acquisition"] == "referral" and self.people:
            referrer = rng.choice(self.people[-300:]).customer
            customer.referral_code = referral_code_of(referrer)
        buyer = rng.randrange(100) >= NEVER_BOUGHT
        lifetime = rng.expovariate(1 / 520)
        return _Person(
            customer=customer,
            sex=sex,
            age=age,
            interests=interests,
            buyer=buyer,
            rate=rng.gammavariate(1.3, 2.0),
            churn_at=customer.signed_up_at + timedelta(days=lifetime),
        )

    def _household_member(self, external_id: str, table: PeopleTable, head: _Person) -> _Person:
        """A spouse, child or parent: the same family name, phone, city and time zone."""
        rng = self.rng
        name_table = PEOPLE[str(head.customer.attributes.get("born_in", table.country))]
        sex = "f" if rng.random() < 0.5 else "m"
        given, family = self._name(name_table, sex, family=head.customer.family_name)
        base_age = head.age or 40
        age = max(18, min(80, base_age + rng.choice((-28, -25, -3, 0, 2, 26))))
        birthday = self._birthday(age)
        email = self._email(name_table, table, given, family, birthday.year) if rng.random() < 0.7 else None
        person = self._person(
            external_id,
            table,
            name_table,
            sex,
            age,
            given,
            family,
            email,
            head.customer.phone,
            birthday,
            str(head.customer.attributes["city"]),
            head.customer.time_zone,
        )
        person.customer.household_of = head.customer.external_id
        person.customer.attributes["household"] = head.customer.external_id
        return person

    def _duplicate(self, external_id: str, original: _Person) -> _Person:
        """The same person signing up again: typed without diacritics with the same phone, or with
        the same email in other letter case."""
        rng = self.rng
        first = original.customer
        name_table = PEOPLE[str(first.attributes.get("born_in", first.country))]
        if first.phone and (rng.random() < 0.5 or not first.email):
            given = " ".join(romanise(part, name_table).capitalize() for part in first.given_name.split())
            family = romanise(first.family_name, name_table).capitalize()
            if name_table.country == "TH":  # Thai names are kept in Thai script
                given, family = first.given_name, first.family_name
            email = None
            phone = first.phone
        else:
            given, family = first.given_name, first.family_name
            assert first.email is not None
            local, domain = first.email.split("@")
            email = f"{local.capitalize()}@{domain}"
            phone = None
        customer = PlannedCustomer(
            external_id=external_id,
            market=first.market,
            given_name=given,
            family_name=family,
            form_of_address=first.form_of_address,
            email=email,
            phone=phone,
            language=first.language,
            preferred_channel="email" if email else "sms",
            time_zone=first.time_zone,
            country=first.country,
            birthday=first.birthday if rng.random() < 0.5 else None,
            signed_up_at=self._signup(),
            tags=[],
            attributes={"city": first.attributes["city"], "signup_source": "store_form"},
            duplicate_of=first.external_id,
        )
        return _Person(
            customer=customer,
            sex=original.sex,
            age=original.age,
            interests=original.interests,
            buyer=rng.random() < 0.5,
            rate=0.5,
            churn_at=customer.signed_up_at + timedelta(days=120),
        )

    def _organisations(self) -> list[PlannedOrganisation]:
        present = {p.customer.country for p in self.people}
        planned: list[PlannedOrganisation] = []
        for index, (country, name, industry, size) in enumerate(ORGANISATIONS, start=1):
            if country not in present:
                continue
            org = PlannedOrganisation(f"LL-O{index:03d}", name, industry, size, country)
            candidates = [
                p
                for p in self.people
                if p.customer.country == country
                and p.customer.duplicate_of is None
                and p.customer.organisation_external_id is None
                and p.customer.household_of is None
                and p.age is not None
                and p.age >= 25
            ]
            if not candidates:
                continue
            planned.append(org)
            roles = CONTACT_ROLES[PEOPLE[country].language if country in {"VN", "HU", "TH"} else "en"]
            for position, contact in enumerate(
                self.rng.sample(candidates, k=min(len(candidates), self.rng.randint(1, 3)))
            ):
                contact.customer.organisation_external_id = org.external_id
                contact.customer.organisation_role = roles[position % len(roles)]
                contact.customer.tags.append("wholesale")
                contact.b2b = True
                contact.buyer = True
                contact.rate = self.rng.uniform(6, 14)
                contact.churn_at = max(contact.churn_at, self.now + timedelta(days=30))
        return planned

    # ---- orders --------------------------------------------------------------------------------

    def _average_weight(self, market: str) -> float:
        days = [self.start + timedelta(days=d) for d in range(0, 366)]
        return sum(day_weight(market, d) for d in days) / len(days)

    def _max_weight(self, market: str) -> float:
        days = [
            self.start - timedelta(days=365) + timedelta(days=d)
            for d in range((self.end - self.start).days + 400)
        ]
        return max(day_weight(market, d) for d in days)

    def _orders_for(self, person: _Person) -> None:
        if not person.buyer:
            return
        rng = self.rng
        customer = person.customer
        market = MARKET_BY_CODE[customer.market]
        window_start = max(customer.signed_up_at, self.start_at)
        window_end = min(person.churn_at, self.now)
        times: list[datetime] = []
        if customer.signed_up_at >= self.start_at and rng.random() < 0.8:
            times.append(customer.signed_up_at + timedelta(hours=rng.uniform(0.2, 72)))
        if window_end > window_start:
            peak = self.max_weight[market.code]
            candidate_rate = person.rate * peak / self.avg_weight[market.code] / 365  # per day
            t = window_start
            while len(times) < 60:
                t += timedelta(days=rng.expovariate(candidate_rate))
                if t >= window_end:
                    break
                if rng.random() < day_weight(market.code, t.date()) / peak:
                    times.append(t)
        for moment in sorted(times):
            if moment >= self.now:
                continue
            placed_at = _at(rng, moment.astimezone(ZoneInfo(market.time_zone)).date(), market.time_zone)
            placed_at = min(placed_at, self.now - timedelta(minutes=rng.randint(5, 600)))
            if placed_at < customer.signed_up_at:
                placed_at = customer.signed_up_at + timedelta(minutes=rng.randint(5, 120))
                if placed_at >= self.now:
                    continue
            self.orders.append(self._order(person, market, placed_at))
        if not person.b2b and customer.duplicate_of is None and rng.randrange(100) < SUBSCRIBER_SHARE:
            self._subscription(person, market)

    def _pick_products(self, person: _Person, market: MarketSpec, day: date, count: int) -> list[ProductSpec]:
        weights: list[float] = []
        for spec in PRODUCTS:
            w = float(spec.weight_in(market.code))
            if _category_tag(spec.category) in person.interests:
                w *= 2.5
            if spec.category == "Gift sets":
                w *= 8 if _gift_season(spec.sku, market.code, day) else 0.15
            weights.append(w)
        chosen: list[ProductSpec] = []
        while len(chosen) < count:
            spec = self.rng.choices(PRODUCTS, weights=weights, k=1)[0]
            if spec not in chosen:
                chosen.append(spec)
        return chosen

    def _order(self, person: _Person, market: MarketSpec, placed_at: datetime) -> PlannedOrder:
        rng = self.rng
        customer = person.customer
        currency = market.currency
        local_day = placed_at.astimezone(ZoneInfo(market.time_zone)).date()
        channel = pick(rng, market.channels)
        if person.b2b:
            channel = rng.choice(("web", "phone"))
        n_lines = rng.randint(2, 5) if person.b2b else 1 + (rng.random() < 0.45) + (rng.random() < 0.2)
        products = self._pick_products(person, market, local_day, n_lines)
        rate = market.tax_percent / 100
        gross_lines: list[tuple[ProductSpec, int, Decimal]] = []
        for spec in products:
            quantity = rng.randint(5, 40) if person.b2b else pick(rng, ((1, 75), (2, 18), (3, 7)))
            gross_lines.append((spec, quantity, self.prices[(spec.sku, currency)]))
        gross_subtotal = sum((q * price for _, q, price in gross_lines), Decimal(0))
        promo = rng.randrange(100) < (30 if day_weight(market.code, local_day) > 1.8 else 10)
        gross_discount = (
            quantize(gross_subtotal * Decimal(rng.choice((10, 15))) / 100, currency) if promo else Decimal(0)
        )
        gross_shipping = Decimal(0)
        if channel != "store" and gross_subtotal - gross_discount < market.free_shipping_from:
            gross_shipping = market.shipping
        lines: list[PlannedLine] = []
        if market.tax_included:
            divisor = 1 + rate
            for spec, quantity, price in gross_lines:
                lines.append(
                    PlannedLine(
                        spec.sku, spec.name, spec.category, quantity, quantize(price / divisor, currency)
                    )
                )
            subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
            discount = quantize(gross_discount / divisor, currency)
            shipping = quantize(gross_shipping / divisor, currency)
            total = gross_subtotal - gross_discount + gross_shipping
            tax = total - (subtotal - discount + shipping)
        else:
            for spec, quantity, price in gross_lines:
                lines.append(PlannedLine(spec.sku, spec.name, spec.category, quantity, price))
            subtotal = gross_subtotal
            discount = gross_discount
            shipping = gross_shipping
            tax = quantize((subtotal - discount) * rate, currency)
            total = subtotal - discount + tax + shipping
        seq = self.order_seq.get(market.code, 0) + 1
        self.order_seq[market.code] = seq
        external_id = f"LL-{market.code}-{100000 + seq}"

        status, fulfilment = "placed", "unfulfilled"
        fulfilled_at: datetime | None = None
        delivered_at: datetime | None = None
        refunds: tuple[PlannedRefund, ...] = ()
        low, high = _DELIVERY_DAYS[market.code]
        if channel == "store":
            promised = local_day
            fulfilment, fulfilled_at, delivered_at = "delivered", placed_at, placed_at
        else:
            promised = local_day + timedelta(days=rng.randint(low + 1, high))
        if rng.randrange(100) < CANCELLED_SHARE and channel != "store":
            status = "cancelled"
        elif channel != "store":
            fulfilled_at = placed_at + timedelta(hours=rng.uniform(2, 30))
            if rng.randrange(100) < LATE_SHARE:
                arrival = promised + timedelta(days=rng.randint(1, 6))
            else:
                arrival = max(local_day + timedelta(days=low), promised - timedelta(days=rng.randint(0, 2)))
            delivered_at = _at(rng, arrival, market.time_zone)
            if delivered_at <= fulfilled_at:
                delivered_at = fulfilled_at + timedelta(hours=rng.uniform(3, 20))
            if fulfilled_at >= self.now:
                fulfilled_at = delivered_at = None
            elif delivered_at >= self.now:
                fulfilment, delivered_at = "fulfilled", None
            else:
                fulfilment = "delivered"
        if fulfilment == "delivered" and delivered_at is not None and rng.randrange(100) < REFUND_SHARE:
            refunded_at = delivered_at + timedelta(days=rng.uniform(1, 14))
            if refunded_at < self.now:
                index = rng.randrange(len(lines))
                reason, kind = pick(rng, [((r, k), w) for r, k, w in _REFUND_REASONS])
                quantity = (
                    lines[index].quantity if rng.random() < 0.7 else rng.randint(1, lines[index].quantity)
                )
                refunds = (PlannedRefund(index, quantity, reason, kind, refunded_at),)
        return PlannedOrder(
            external_id=external_id,
            customer_external_id=customer.external_id,
            market=market.code,
            currency=currency,
            channel=channel,
            placed_at=placed_at,
            lines=tuple(lines),
            subtotal=quantize(subtotal, currency),
            discount=discount,
            tax=quantize(tax, currency),
            shipping=shipping,
            total=quantize(total, currency),
            status=status,
            promised_delivery_date=promised if status != "cancelled" else None,
            fulfilment_status=fulfilment,
            fulfilled_at=fulfilled_at,
            delivered_at=delivered_at,
            refunds=refunds,
        )

    def _subscription(self, person: _Person, market: MarketSpec) -> None:
        rng = self.rng
        customer = person.customer
        code, _name, months, price_eur = rng.choice(PLANS)
        earliest = max(customer.signed_up_at, self.start_at)
        if earliest >= self.now - timedelta(days=7):
            return
        started_at = earliest + timedelta(days=rng.uniform(0, (self.now - earliest).days * 0.7))
        interval = "year" if months == 12 else "month"
        renews_at: datetime | None = _add_months(started_at, months)
        cancelled_at: datetime | None = None
        status = "active"
        if rng.random() < 0.35:
            cancelled_at = started_at + timedelta(days=rng.uniform(20, 400))
            if cancelled_at < self.now:
                status, renews_at = "cancelled", None
            else:
                cancelled_at = None
        if renews_at is not None:
            while renews_at <= self.now:
                renews_at = _add_months(renews_at, months)
        self.subscriptions.append(
            PlannedSubscription(
                external_id=f"LL-S{len(self.subscriptions) + 1:05d}",
                customer_external_id=customer.external_id,
                plan=code,
                interval=interval,
                price=local_price(price_eur, market.currency, self.fx[market.currency]),
                currency=market.currency,
                started_at=started_at,
                renews_at=renews_at,
                cancelled_at=cancelled_at,
                status=status,
            )
        )
        customer.tags.append("subscriber")

    def _tag_by_value(self) -> None:
        """Tag the top 5 % of spenders (in EUR at the start rates) as ``vip``."""
        spent: dict[str, Decimal] = {}
        for order in self.orders:
            if order.status == "cancelled":
                continue
            eur = order.total / self.fx[order.currency]
            spent[order.customer_external_id] = spent.get(order.customer_external_id, Decimal(0)) + eur
        ranked = sorted(spent.items(), key=lambda kv: (-kv[1], kv[0]))
        for external_id, _ in ranked[: max(1, len(ranked) // 20)]:
            self.by_id[external_id].customer.tags.append("vip")

    # ---- consent and timeline ------------------------------------------------------------------

    def _consents_for(self, person: _Person) -> None:
        rng = self.rng
        c = person.customer
        source = str(c.attributes.get("signup_source", "web_signup"))
        at = c.signed_up_at
        gdpr = c.market in {"HU", "EU"}

        def add(purpose: str, channel: str, src: str, withdraw_chance: float = 0.0) -> None:
            expires = at + timedelta(days=730) if gdpr and purpose == "marketing" else None
            self.consents.append(
                PlannedConsent(
                    c.external_id, purpose, channel, "granted", src, CONSENT_PROOFS[src], at, expires
                )
            )
            if rng.random() < withdraw_chance:
                span = max(1.0, (self.now - at).total_seconds())
                when = at + timedelta(seconds=span * rng.uniform(0.1, 0.95))
                self.consents.append(
                    PlannedConsent(
                        c.external_id,
                        purpose,
                        channel,
                        "withdrawn",
                        "unsubscribe",
                        "Unsubscribe link in a newsletter",
                        when,
                        None,
                    )
                )

        if c.email:
            add("transactional", "email", "checkout")
            if rng.random() < 0.55 or c.preferred_channel == "email":
                add("marketing", "email", source, 0.1)
            if rng.random() < 0.3:
                add("profiling", "email", source)
        if c.phone:
            if rng.random() < 0.25 or c.preferred_channel == "sms":
                add("marketing", "sms", source, 0.08)
            chat = CHAT_CHANNEL.get(c.country)
            if chat and (c.preferred_channel == chat or rng.random() < 0.3):
                add("marketing", chat, "zalo_oa" if chat == "zalo" else "line_oa", 0.05)

    def _interactions_for(self, person: _Person) -> None:
        rng = self.rng
        c = person.customer
        lang = c.language if c.language in INTERACTIONS["store_visit"] else "en"
        orders = self.orders_by_customer.get(c.external_id, [])
        agents = _SUPPORT_AGENTS[lang]
        count = min(6, int(rng.expovariate(1 / 1.8)))
        span = max(1.0, (self.now - c.signed_up_at).total_seconds())
        for _ in range(count):
            kind = pick(
                rng,
                (("page_view", 40), ("newsletter_opened", 25 if c.email else 0), ("store_visit", 10),
                 ("product_question", 10), ("chat_message", 10), ("support_call", 8 if orders else 0)),
            )  # fmt: skip
            when = c.signed_up_at + timedelta(seconds=span * rng.random())
            product = rng.choice(PRODUCTS).name
            about = rng.choice(orders) if orders else None
            order_ref = about.external_id if about else ""
            if about is not None and kind == "support_call" and when < about.placed_at:
                # a call about an order comes after it was placed
                when = min(self.now, about.placed_at + (about.placed_at - when) % timedelta(days=5))
            channel, direction, actor = {
                "page_view": ("web", "inbound", "customer"),
                "newsletter_opened": ("email", "inbound", "customer"),
                "store_visit": ("store", "inbound", rng.choice(agents)),
                "product_question": (CHAT_CHANNEL.get(c.country, "email"), "inbound", rng.choice(agents)),
                "chat_message": (CHAT_CHANNEL.get(c.country, "email"), "inbound", "customer"),
                "support_call": ("phone", "inbound", rng.choice(agents)),
            }[kind]
            summary = INTERACTIONS[kind][lang].format(order=order_ref, product=product)
            data: dict[str, object] = {"product": product} if "{product}" in INTERACTIONS[kind]["en"] else {}
            if order_ref and "{order}" in INTERACTIONS[kind]["en"]:
                data["order"] = order_ref
            self.interactions.append(
                PlannedInteraction(c.external_id, channel, direction, kind, summary, when, actor, data)
            )
        for order in orders:
            if order.late and order.delivered_at is not None and rng.random() < 0.3:
                self.interactions.append(
                    PlannedInteraction(
                        c.external_id,
                        "phone" if rng.random() < 0.5 else "email",
                        "inbound",
                        "complaint",
                        INTERACTIONS["complaint"][lang].format(order=order.external_id),
                        min(self.now, order.delivered_at + timedelta(hours=rng.uniform(1, 48))),
                        rng.choice(agents),
                        {"order": order.external_id},
                    )
                )

    # ---- segments ------------------------------------------------------------------------------

    def _segments(self) -> list[PlannedSegment]:
        return [
            PlannedSegment(
                "VIP customers", "Top 5 % of customers by spend", {"type": "tag", "op": "has", "value": "vip"}
            ),
            PlannedSegment(
                "Vietnam: reachable on Zalo",
                "Vietnamese customers who agreed to marketing messages on Zalo",
                {
                    "type": "and",
                    "rules": [
                        {"type": "field", "field": "country", "op": "eq", "value": "VN"},
                        {"type": "consent", "purpose": "marketing", "channel": "zalo"},
                    ],
                },
            ),
            PlannedSegment(
                "Hungary: newsletter audience",
                "Hungarian customers with marketing consent for email",
                {
                    "type": "and",
                    "rules": [
                        {"type": "field", "field": "country", "op": "eq", "value": "HU"},
                        {"type": "consent", "purpose": "marketing", "channel": "email"},
                    ],
                },
            ),
            PlannedSegment(
                "Thailand: LINE friends",
                "Thai customers who follow the LINE Official Account",
                {
                    "type": "and",
                    "rules": [
                        {"type": "field", "field": "country", "op": "eq", "value": "TH"},
                        {"type": "consent", "purpose": "marketing", "channel": "line"},
                    ],
                },
            ),
            PlannedSegment(
                "Lapsed buyers",
                "Bought before, but not in the last 180 days",
                {
                    "type": "and",
                    "rules": [
                        {"type": "trait", "name": "order_count", "op": "gte", "value": 1},
                        {"type": "trait", "name": "last_order_at", "op": "older_than_days", "value": 180},
                    ],
                },
            ),
            PlannedSegment(
                "B2B contacts",
                "Contacts of wholesale accounts (cafés, hotels, offices)",
                {"type": "organisation", "op": "exists"},
            ),
            PlannedSegment(
                "Tea lovers outside Asia",
                "Tagged tea-lover and living in Europe or the US",
                {
                    "type": "and",
                    "rules": [
                        {"type": "tag", "op": "has", "value": "tea-lover"},
                        {
                            "type": "not",
                            "rule": {"type": "field", "field": "country", "op": "in", "value": ["VN", "TH"]},
                        },
                    ],
                },
            ),
        ]


def referral_code_of(referrer: PlannedCustomer) -> str:
    """The code a referrer hands out: their romanised given name and customer number."""
    table = PEOPLE[str(referrer.attributes.get("born_in", referrer.country))]
    name = romanise(referrer.given_name.split()[-1], table).upper()[:10]
    return f"{name}{referrer.external_id[-4:]}"


def _category_tag(category: str) -> str:
    return {
        "Coffee": "coffee-lover",
        "Tea": "tea-lover",
        "Gift sets": "gift-buyer",
        "Brewing gear": "gear-enthusiast",
        "Sweets": "sweet-tooth",
    }.get(category, "")


def _gift_season(sku: str, market: str, day: date) -> bool:
    if sku == "GFT-TET-BOX":
        new_year = LUNAR_NEW_YEAR.get(day.year) or LUNAR_NEW_YEAR.get(day.year + 1)
        later = LUNAR_NEW_YEAR.get(day.year + 1)
        return any(ny is not None and 0 <= (ny - day).days <= 30 for ny in (new_year, later))
    if sku == "GFT-XMS-BOX":
        return (day.month == 11 and day.day >= 15) or (day.month == 12 and day.day <= 24)
    if sku == "GFT-SKR-BOX":
        return market == "TH" and ((day.month == 3 and day.day >= 25) or (day.month == 4 and day.day <= 15))
    return True


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, _days_in_month(year, month))
    return moment.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day
