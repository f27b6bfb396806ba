"""The product catalogue: SKU, name, category, a base price in EUR (local prices are derived and
rounded the way shops in each market price things) and how popular each product is per market."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    category: str
    price_eur: Decimal
    # popularity weights: default and per market code
    weight: int
    market_weights: tuple[tuple[str, int], ...] = ()

    def weight_in(self, market: str) -> int:
        return dict(self.market_weights).get(market, self.weight)


def _p(sku: str, name: str, category: str, price: str, weight: int, **markets: int) -> ProductSpec:
    return ProductSpec(sku, name, category, Decimal(price), weight, tuple(sorted(markets.items())))


PRODUCTS: tuple[ProductSpec, ...] = (
    # Coffee
    _p("COF-DLT-250", "Da Lat Arabica, whole beans 250 g", "Coffee", "9.90", 30, VN=45),
    _p("COF-RBS-500", "Buon Ma Thuot Robusta, ground 500 g", "Coffee", "11.50", 25, VN=55, TH=20),
    _p("COF-PHN-SET", "Phin filter coffee starter set", "Coffee", "19.90", 12, VN=20),
    _p("COF-CLD-BRW", "Cold brew coffee bags, 10 pack", "Coffee", "8.90", 14, TH=30),
    _p("COF-DOI-250", "Doi Chaang Arabica 250 g", "Coffee", "10.90", 12, TH=40),
    _p("COF-ESP-1KG", "House espresso blend 1 kg", "Coffee", "24.90", 15, HU=30, EU=25),
    _p("COF-DEC-250", "Swiss water decaf 250 g", "Coffee", "10.50", 6),
    _p("COF-WSL-100", "Weasel-style premium blend 100 g", "Coffee", "29.00", 4, VN=8),
    # Tea
    _p("TEA-JAS-100", "Jasmine green tea 100 g", "Tea", "7.90", 28, VN=35),
    _p("TEA-LOT-050", "Lotus-scented tea 50 g", "Tea", "14.90", 15, VN=30),
    _p("TEA-SHN-100", "Ha Giang Shan Tuyet white tea 100 g", "Tea", "18.50", 8, VN=12),
    _p("TEA-OOL-100", "Mae Salong oolong 100 g", "Tea", "12.90", 16, TH=32),
    _p("TEA-THA-200", "Cha Thai milk tea mix 200 g", "Tea", "6.50", 18, TH=45),
    _p("TEA-CHM-050", "Hungarian chamomile 50 g", "Tea", "4.90", 14, HU=35),
    _p("TEA-LIN-050", "Linden blossom tea 50 g", "Tea", "5.50", 12, HU=30),
    _p("TEA-EGR-100", "Earl Grey with bergamot 100 g", "Tea", "8.50", 18, EU=28, US=25),
    _p("TEA-MAT-030", "Ceremonial matcha 30 g", "Tea", "21.00", 12, US=22),
    _p("TEA-SMP-SET", "Tasting flight, 8 teas", "Tea", "16.90", 10),
    # Tableware
    _p("TBL-BAT-CUP", "Bat Trang glazed cup", "Tableware", "12.00", 12, VN=16),
    _p("TBL-BAT-POT", "Bat Trang teapot 600 ml", "Tableware", "34.00", 7, VN=10),
    _p("TBL-CEL-CUP", "Celadon tea bowl", "Tableware", "15.00", 8, TH=14),
    _p("TBL-BEN-SET", "Benjarong tea set for two", "Tableware", "69.00", 3, TH=6),
    _p("TBL-PRC-MUG", "Porcelain mug, hand-painted", "Tableware", "18.00", 10, HU=18),
    _p("TBL-GLS-SET", "Double-wall glass cups, set of 2", "Tableware", "22.00", 9),
    # Brewing gear
    _p("GEA-KTL-GOO", "Gooseneck kettle 1 l", "Brewing gear", "45.00", 6),
    _p("GEA-GRD-HND", "Hand grinder, ceramic burr", "Brewing gear", "39.00", 6, HU=8, EU=9),
    _p("GEA-V60-02", "Pour-over dripper size 02", "Brewing gear", "21.00", 8),
    _p("GEA-FLT-100", "Paper filters, 100 pack", "Brewing gear", "5.90", 14),
    _p("GEA-INF-STL", "Stainless tea infuser", "Brewing gear", "6.90", 12),
    # Gift sets
    _p("GFT-TET-BOX", "Tet gift box: tea, coffee and candied ginger", "Gift sets", "39.00", 8, VN=25),
    _p("GFT-XMS-BOX", "Christmas tea advent calendar", "Gift sets", "29.00", 8, HU=18, EU=16, US=14),
    _p("GFT-SKR-BOX", "Songkran jasmine gift box", "Gift sets", "24.00", 6, TH=18),
    _p("GFT-CRD-050", "Gift card 50", "Gift sets", "50.00", 5),
    # Sweets
    _p("SWT-GNG-200", "Candied ginger 200 g", "Sweets", "4.50", 12, VN=18),
    _p("SWT-HNY-250", "Acacia honey 250 g", "Sweets", "7.50", 12, HU=25),
    _p("SWT-CKE-BOX", "Mooncake box, 4 pieces", "Sweets", "19.00", 4, VN=10, TH=6),
    _p("SWT-BSC-150", "Butter biscuits 150 g", "Sweets", "5.90", 14),
)

CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(p.category for p in PRODUCTS))

# Subscription plans: code, name, months between renewals (1 = monthly, 12 = yearly), base price in
# EUR per period.
PLANS: tuple[tuple[str, str, int, Decimal], ...] = (
    ("tea-club-monthly", "Tea Club, monthly", 1, Decimal("19.90")),
    ("coffee-club-monthly", "Coffee Club, monthly", 1, Decimal("22.90")),
    ("tasting-yearly", "Tasting box, yearly", 12, Decimal("199.00")),
)
