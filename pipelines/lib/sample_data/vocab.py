"""Static vocabularies for the sample: event taxonomy, time zones, names, devices.

Everything here is a constant, so the simulator's output depends only on its RNGs.
Event and page names are plain ASCII without quotes or backslashes: the JSONL writer
embeds them in JSON text without escaping (see records.py).
"""

from __future__ import annotations

SIGNUP_EVENT = "Signed Up"
ONBOARDING_STEPS: tuple[str, str, str, str] = (
    "Profile Completed",
    "First Project Created",
    "Teammate Invited",
    "First Report Shared",
)

# Ordinary in-app activity, weighted like a B2B analytics tool: mostly reading.
ACTIVITY_EVENTS: tuple[tuple[str, float], ...] = (
    ("Dashboard Viewed", 0.34),
    ("Report Viewed", 0.22),
    ("Project Updated", 0.16),
    ("Search Performed", 0.14),
    ("Comment Added", 0.10),
    ("Report Exported", 0.04),
)

# In-app pages (after signup) and marketing pages (anonymous visitors before signup).
APP_PAGES: tuple[tuple[str, str, float], ...] = (
    ("Dashboard", "/dashboard", 0.40),
    ("Projects", "/projects", 0.20),
    ("Reports", "/reports", 0.18),
    ("Settings", "/settings", 0.07),
    ("Team", "/settings/team", 0.05),
    ("Help Center", "/help", 0.06),
    ("Billing", "/settings/billing", 0.04),
)
MARKETING_PAGES: tuple[tuple[str, str, float], ...] = (
    ("Home", "/", 0.40),
    ("Pricing", "/pricing", 0.22),
    ("Features", "/features", 0.18),
    ("Blog Post", "/blog/onboarding-metrics-that-matter", 0.12),
    ("Customers", "/customers", 0.08),
)
REFERRERS: tuple[str, ...] = (
    "",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://news.ycombinator.com/",
    "https://www.linkedin.com/",
    "https://duckduckgo.com/",
)
APP_HOST = "https://app.example.com"
SITE_HOST = "https://www.example.com"

# (IANA name, standard UTC offset in hours, weight, locale). The offset only shapes the
# hour-of-day of activity; DST is ignored on purpose so the sample does not depend on the
# calendar. Weights follow a typical English-first SaaS audience across all continents.
TIMEZONES: tuple[tuple[str, float, float, str], ...] = (
    ("America/New_York", -5, 0.15, "en-US"),
    ("America/Chicago", -6, 0.07, "en-US"),
    ("America/Denver", -7, 0.03, "en-US"),
    ("America/Los_Angeles", -8, 0.10, "en-US"),
    ("America/Toronto", -5, 0.03, "en-CA"),
    ("America/Mexico_City", -6, 0.025, "es-MX"),
    ("America/Bogota", -5, 0.01, "es-CO"),
    ("America/Sao_Paulo", -3, 0.04, "pt-BR"),
    ("America/Argentina/Buenos_Aires", -3, 0.01, "es-AR"),
    ("America/St_Johns", -3.5, 0.003, "en-CA"),
    ("Europe/London", 0, 0.08, "en-GB"),
    ("Europe/Dublin", 0, 0.01, "en-IE"),
    ("Europe/Berlin", 1, 0.065, "de-DE"),
    ("Europe/Paris", 1, 0.045, "fr-FR"),
    ("Europe/Madrid", 1, 0.025, "es-ES"),
    ("Europe/Amsterdam", 1, 0.02, "nl-NL"),
    ("Europe/Stockholm", 1, 0.01, "sv-SE"),
    ("Europe/Warsaw", 1, 0.015, "pl-PL"),
    ("Europe/Kyiv", 2, 0.01, "uk-UA"),
    ("Europe/Istanbul", 3, 0.01, "tr-TR"),
    ("Africa/Lagos", 1, 0.015, "en-NG"),
    ("Africa/Cairo", 2, 0.008, "ar-EG"),
    ("Africa/Johannesburg", 2, 0.01, "en-ZA"),
    ("Africa/Nairobi", 3, 0.008, "en-KE"),
    ("Asia/Dubai", 4, 0.01, "en-AE"),
    ("Asia/Kolkata", 5.5, 0.06, "en-IN"),
    ("Asia/Kathmandu", 5.75, 0.002, "ne-NP"),
    ("Asia/Jakarta", 7, 0.01, "id-ID"),
    ("Asia/Singapore", 8, 0.02, "en-SG"),
    ("Asia/Shanghai", 8, 0.015, "zh-CN"),
    ("Asia/Manila", 8, 0.01, "en-PH"),
    ("Asia/Tokyo", 9, 0.025, "ja-JP"),
    ("Asia/Seoul", 9, 0.01, "ko-KR"),
    ("Australia/Sydney", 10, 0.02, "en-AU"),
    ("Pacific/Auckland", 12, 0.008, "en-NZ"),
    ("UTC", 0, 0.015, "en-US"),
)
# What people type into a profile form: not valid IANA names. About 2% of users.
INVALID_TIMEZONES: tuple[str, ...] = (
    "Mars/Olympus",
    "GMT+25",
    "",
    "Europe/Berln",
    "Eastern Time",
    "UTC+99:00",
)
INVALID_TIMEZONE_RATE = 0.02

# Relative activity by local hour (0..23): a working-hours product with an evening tail.
HOUR_WEIGHTS: tuple[float, ...] = (
    0.05, 0.03, 0.02, 0.02, 0.03, 0.06, 0.15, 0.35, 0.70, 0.95, 1.00, 1.00,
    0.85, 0.95, 1.00, 0.95, 0.85, 0.65, 0.45, 0.38, 0.33, 0.28, 0.18, 0.10,
)  # fmt: skip
WEEKEND_WEIGHT = 0.45

FIRST_NAMES: tuple[str, ...] = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Mateo", "Sofia", "Ethan",
    "Amelia", "James", "Isabella", "Benjamin", "Charlotte", "Elijah", "Harper", "Daniel",
    "Chloé", "Jonas", "Lea", "Finn", "Hannah", "Lukas", "Emilia", "Søren", "Ingrid",
    "José", "María", "Camila", "Diego", "Valentina", "João", "Beatriz", "Priya", "Arjun",
    "Ananya", "Rohan", "Aisha", "Omar", "Fatima", "Yusuf", "Chinedu", "Amara", "Kwame",
    "Wei", "Mei", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon", "Nguyen", "Siti", "Rizal",
    "Zoë", "Sean", "Aoife", "Olga", "Dmytro", "Zeynep", "Maja", "Jakub", "Grace", "Leo",
)  # fmt: skip
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Lee",
    "Müller", "Schmidt", "Schneider", "Fischer", "Dubois", "Lefèvre", "Rossi", "Bianchi",
    "García", "Fernández", "López", "Silva", "Santos", "Oliveira", "Sharma", "Patel",
    "Iyer", "Gupta", "Khan", "Hassan", "Okafor", "Mensah", "Adeyemi", "Wang", "Li",
    "Zhang", "Tanaka", "Sato", "Kim", "Park", "Tran", "Santoso", "O'Brien", "Murphy",
    "Kowalski", "Nowak", "Novák", "Johansson", "Andersen", "Öztürk", "Kovalenko", "Cohen",
)  # fmt: skip
# Reserved example domains (RFC 2606/6761) so a misconfigured sender can never reach a
# real inbox with sample data.
EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("mail.example.com", 0.30),
    ("example.org", 0.12),
    ("example.net", 0.08),
    ("acme.example", 0.08),
    ("globex.example", 0.07),
    ("initech.example", 0.07),
    ("umbrella.example", 0.06),
    ("hooli.example", 0.06),
    ("stark-industries.example", 0.05),
    ("wayne-enterprises.example", 0.05),
    ("piedpiper.example", 0.06),
)
ADMIN_EMAIL_DOMAIN = "team.example.com"

USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/128.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0",
)
BROWSER_LIBRARY = {"name": "analytics.js", "version": "5.2.1"}
SERVER_LIBRARY = {"name": "analytics-node", "version": "2.1.3"}
# Documentation address blocks (RFC 5737): realistic-looking, never a real person's IP.
IP_PREFIXES: tuple[str, ...] = ("192.0.2.", "198.51.100.", "203.0.113.")

PLANS: tuple[tuple[str, float], ...] = (("free", 0.62), ("trial", 0.33), ("team", 0.05))
SIGNUP_METHODS: tuple[tuple[str, float], ...] = (
    ("email", 0.55),
    ("google", 0.35),
    ("github", 0.07),
    ("sso", 0.03),
)
UTM_SOURCES: tuple[tuple[str | None, float], ...] = (
    (None, 0.45),
    ("google", 0.20),
    ("linkedin", 0.10),
    ("newsletter", 0.08),
    ("partner", 0.07),
    ("producthunt", 0.05),
    ("twitter", 0.05),
)
PROJECT_TEMPLATES: tuple[str, ...] = ("blank", "kanban", "marketing-funnel", "okr", "sprint")
SHARE_CHANNELS: tuple[str, ...] = ("link", "email", "slack", "embed")
INVITE_ROLES: tuple[str, ...] = ("editor", "viewer", "admin")
ROLES: tuple[str, ...] = ("founder", "engineer", "marketer", "analyst", "product", "ops")
