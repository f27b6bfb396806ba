"""B2B accounts: cafés, hotels, offices and shops that buy wholesale, with their contacts' roles."""

from __future__ import annotations

# (country, name, industry, size)
ORGANISATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("VN", "Công ty TNHH Cà phê Sương Mai", "hospitality", "11-50"),
    ("VN", "Công ty Cổ phần Khách sạn Sông Hàn", "hospitality", "51-200"),
    ("VN", "Công ty TNHH Thương mại Minh Phát", "retail", "11-50"),
    ("VN", "Tiệm trà Phố Cổ", "hospitality", "1-10"),
    ("VN", "Công ty TNHH Quà tặng Doanh nghiệp An Khang", "corporate gifts", "11-50"),
    ("VN", "Văn phòng Luật Đức Tín", "professional services", "11-50"),
    ("VN", "Chuỗi cà phê Góc Phố", "hospitality", "201-1000"),
    ("VN", "Công ty Cổ phần Công nghệ Sao Việt", "technology", "201-1000"),
    ("HU", "Duna Kávéház Kft.", "hospitality", "11-50"),
    ("HU", "Balaton Vendéglátó Zrt.", "hospitality", "51-200"),
    ("HU", "Kovács és Társa Kft.", "retail", "1-10"),
    ("HU", "Tisza Irodaszer Kft.", "office supplies", "11-50"),
    ("HU", "Zöld Levél Teaház Bt.", "hospitality", "1-10"),
    ("HU", "Pannon Informatika Zrt.", "technology", "201-1000"),
    ("HU", "Hegyvidék Szálloda Kft.", "hospitality", "51-200"),
    ("TH", "บริษัท สยามคอฟฟี่ จำกัด", "hospitality", "51-200"),
    ("TH", "ห้างหุ้นส่วนจำกัด เชียงใหม่ ทีเฮาส์", "hospitality", "1-10"),
    ("TH", "บริษัท ภูเก็ต รีสอร์ท แอนด์ สปา จำกัด", "hospitality", "201-1000"),
    ("TH", "บริษัท กรุงเทพ ออฟฟิศ ซัพพลาย จำกัด", "office supplies", "11-50"),
    ("TH", "บริษัท ไทยเทค โซลูชั่น จำกัด (มหาชน)", "technology", "1000+"),
    ("TH", "ร้านชาบ้านสวน", "hospitality", "1-10"),
    ("DE", "Kaffeerösterei Am Hafen GmbH", "hospitality", "11-50"),
    ("DE", "Nordlicht Büroservice GmbH", "office supplies", "51-200"),
    ("AT", "Wiener Teesalon OG", "hospitality", "1-10"),
    ("FR", "Maison du Thé Lumière SARL", "retail", "11-50"),
    ("US", "Brooklyn Brew Collective LLC", "hospitality", "11-50"),
    ("US", "Pacific Coast Offices Inc.", "office supplies", "201-1000"),
)

# Contact roles per language of the organisation's country.
CONTACT_ROLES: dict[str, tuple[str, ...]] = {
    "vi": ("Giám đốc", "Trưởng phòng mua hàng", "Kế toán", "Quản lý cửa hàng"),
    "hu": ("Ügyvezető", "Beszerzési vezető", "Könyvelő", "Üzletvezető"),
    "th": ("กรรมการผู้จัดการ", "ผู้จัดการฝ่ายจัดซื้อ", "นักบัญชี", "ผู้จัดการร้าน"),
    "en": ("Managing director", "Purchasing manager", "Accountant", "Store manager"),
}
