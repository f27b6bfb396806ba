"""Reference tables for the demo business: names, phones, places, products and wording per market.

Surname weights follow published frequency statistics roughly (Nguyễn is about a third of Vietnamese
people, Nagy and Kovács lead in Hungary), so lists and searches look like a real customer base.

Email addresses use provider-like domains under the reserved ``.example`` top-level domain
(RFC 2606), so a demo database can never send mail to a real mailbox.
"""

from __future__ import annotations

from patron.demo.data import hungary, international, thailand, vietnam
from patron.demo.data.people import PeopleTable

PEOPLE: dict[str, PeopleTable] = {
    "VN": vietnam.TABLE,
    "HU": hungary.TABLE,
    "TH": thailand.TABLE,
    **international.TABLES,
}

__all__ = ["PEOPLE", "PeopleTable"]
