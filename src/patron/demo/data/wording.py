"""Words customers and staff actually write, per language: timeline summaries, consent proofs, tags."""

from __future__ import annotations

# kind -> language -> summary; {order} and {product} are filled in by the generator
INTERACTIONS: dict[str, dict[str, str]] = {
    "support_call": {
        "vi": "Gọi điện hỏi về thời gian giao đơn hàng {order}",
        "hu": "Telefonon érdeklődött a(z) {order} rendelés szállítási idejéről",
        "th": "โทรสอบถามเวลาจัดส่งคำสั่งซื้อ {order}",
        "en": "Called about the delivery time of order {order}",
    },
    "product_question": {
        "vi": "Hỏi cách pha {product}",
        "hu": "Kérdezett a(z) {product} elkészítéséről",
        "th": "สอบถามวิธีชง {product}",
        "en": "Asked how to brew {product}",
    },
    "store_visit": {
        "vi": "Ghé cửa hàng, nếm thử trà mới",
        "hu": "Üzletlátogatás, megkóstolta az új teákat",
        "th": "แวะร้าน ชิมชาใหม่",
        "en": "Visited the store and tasted the new teas",
    },
    "newsletter_opened": {
        "vi": "Mở bản tin tháng",
        "hu": "Megnyitotta a havi hírlevelet",
        "th": "เปิดอ่านจดหมายข่าวประจำเดือน",
        "en": "Opened the monthly newsletter",
    },
    "complaint": {
        "vi": "Khiếu nại: gói hàng bị móp khi giao ({order})",
        "hu": "Panasz: sérült csomag érkezett ({order})",
        "th": "ข้อร้องเรียน: พัสดุเสียหายระหว่างจัดส่ง ({order})",
        "en": "Complaint: parcel arrived damaged ({order})",
    },
    "chat_message": {
        "vi": "Nhắn tin hỏi về chương trình khách hàng thân thiết",
        "hu": "Üzenetben érdeklődött a hűségprogramról",
        "th": "ส่งข้อความสอบถามเรื่องโปรแกรมสะสมคะแนน",
        "en": "Sent a message asking about the loyalty programme",
    },
    "page_view": {
        "vi": "Xem trang {product}",
        "hu": "Megtekintette: {product}",
        "th": "ดูหน้าสินค้า {product}",
        "en": "Viewed {product}",
    },
}

# preferred messaging channel per country
CHAT_CHANNEL: dict[str, str] = {"VN": "zalo", "TH": "line"}

CONSENT_PROOFS: dict[str, str] = {
    "web_signup": "Checkbox on the sign-up form (v3), IP logged",
    "store_form": "Paper form signed in store, scanned",
    "app_settings": "Toggle in the mobile app settings",
    "zalo_oa": "Followed the Zalo Official Account and accepted messages",
    "line_oa": "Added the LINE Official Account as a friend",
    "checkout": "Checkbox at checkout",
}

INTEREST_TAGS: tuple[str, ...] = ("coffee-lover", "tea-lover", "gift-buyer", "gear-enthusiast", "sweet-tooth")
EXTRA_TAGS: tuple[tuple[str, int], ...] = (
    ("newsletter", 30),
    ("instagram", 8),
    ("tiktok", 6),
    ("event-2024", 4),
    ("influencer", 1),
    ("staff", 1),
)
