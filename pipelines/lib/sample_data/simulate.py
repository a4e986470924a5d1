"""One user's event stream, simulated in isolation.

Every user has an RNG seeded from (seed, user index) only, so a user's events do not
depend on the output format, on how many malformed records are mixed in, or on the other
users: the generator can stream user by user with constant memory, and the formats stay
in parity. Times are integer epoch milliseconds until the record is rendered.
"""

from __future__ import annotations

import math
import random

from pipelines.lib.sample_data import vocab
from pipelines.lib.sample_data.personas import Persona, pick_persona
from pipelines.lib.sample_data.profiles import TIMEZONE_TABLE, UserProfile, make_profile
from pipelines.lib.sample_data.records import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    MS_PER_SECOND,
    IsoFormatter,
    Record,
    dumps,
    uuid4_from,
)
from pipelines.lib.sample_data.sampling import lognormal_ms, pick, poisson, weighted

TRAIT_UPDATE_RATE = 0.12  # users who send a later identify with changed traits

# Raw event before rendering: (timestamp ms, type, event/page name, properties JSON,
# traits JSON, from the browser library?, anonymous (before identify)?)
_Raw = tuple[int, str, str | None, str | None, str | None, bool, bool]


_ACTIVITY = weighted(vocab.ACTIVITY_EVENTS)
_APP_PAGES = weighted(vocab.APP_PAGES)
_MARKETING_PAGES = weighted(vocab.MARKETING_PAGES)
_PLANS = weighted(vocab.PLANS)
_SIGNUP_METHODS = weighted(vocab.SIGNUP_METHODS)
_UTM = weighted(vocab.UTM_SOURCES)

# The activity weight of a moment: hour of day and weekday in the user's local time.
_MAX_WEIGHT = max(vocab.HOUR_WEIGHTS)
# Mean acceptance of the thinning step, so thinning keeps the persona's average rate.
_MEAN_ACCEPT = (sum(vocab.HOUR_WEIGHTS) / 24 / _MAX_WEIGHT) * (5 + 2 * vocab.WEEKEND_WEIGHT) / 7

_REPORT_SOURCES = ("list", "search", "email", "link")
_PROJECT_CHANGES = ("renamed", "task_added", "status_changed", "due_date_set")
_EXPORT_FORMATS = ("csv", "pdf", "xlsx")

_APP_PAGE_PROPS = {
    name: dumps({"path": path, "url": vocab.APP_HOST + path, "title": name, "referrer": ""})
    for name, path, _ in vocab.APP_PAGES
}
_GET_STARTED_PROPS = dumps(
    {"path": "/get-started", "url": vocab.APP_HOST + "/get-started", "title": "Get Started",
     "referrer": ""}
)  # fmt: skip
_SIGNUP_PAGE_PROPS = {
    ref: dumps({"path": "/signup", "url": vocab.SITE_HOST + "/signup", "title": "Sign Up",
                "referrer": ref})
    for ref in vocab.REFERRERS
}  # fmt: skip


def _accept_weight(ms: int, offset_ms: int) -> float:
    local = ms + offset_ms
    hour_weight = vocab.HOUR_WEIGHTS[(local // MS_PER_HOUR) % 24] / _MAX_WEIGHT
    # Epoch day 0 (1970-01-01) was a Thursday: weekday = (day + 3) % 7, Monday = 0.
    if ((local // MS_PER_DAY) + 3) % 7 >= 5:
        return hour_weight * vocab.WEEKEND_WEIGHT
    return hour_weight


class UserSimulator:
    """Simulates users one at a time for a fixed (seed, clock T, days)."""

    def __init__(self, *, seed: int, end_ms: int, days: int) -> None:
        self.seed = seed
        self.end_ms = end_ms
        self.days = days
        self.iso = IsoFormatter()

    # -- timeline ------------------------------------------------------------------------

    def _signup_ms(self, rng: random.Random, offset_ms: int) -> int:
        # Uniform over the window, thinned by local hour and weekday: people sign up at
        # work. The last 5 minutes are excluded so the signup itself is received before T.
        span = self.days * MS_PER_DAY - 5 * MS_PER_MINUTE
        latest = self.end_ms - 5 * MS_PER_MINUTE
        while True:
            t = latest - int(rng.random() * span)
            if rng.random() < _accept_weight(t, offset_ms):
                return t

    def simulate(self, index: int) -> tuple[str, list[Record]]:
        """The user's id and their records in time order (all received before T)."""
        rng = random.Random(f"bis-sample:{self.seed}:{index}")
        persona = pick_persona(rng)
        profile = make_profile(rng, index, self.seed)
        signup = self._signup_ms(rng, profile.offset_ms)
        raw: list[_Raw] = []

        if profile.anonymous_id is not None:
            self._anonymous_visits(rng, signup, raw)
        self._signup(rng, profile, signup, raw)
        steps = self._onboarding(rng, persona, signup, raw)

        lifetime_end = signup + lognormal_ms(rng, *persona.lifetime_d, MS_PER_DAY)
        churn = lifetime_end
        if steps:
            churn = max(churn, steps[-1] + lognormal_ms(rng, *persona.linger_d, MS_PER_DAY))
        self._sessions(rng, persona, profile, signup, churn, steps, raw)
        if rng.random() < persona.return_prob:
            back = churn + int(rng.expovariate(1 / 12) * MS_PER_DAY)
            self._session(rng, profile, back, steps, raw)
        if rng.random() < TRAIT_UPDATE_RATE:
            self._trait_update(rng, profile, signup, churn, raw)

        raw.sort(key=_by_time)
        return profile.user_id, self._render(rng, profile, raw)

    def _anonymous_visits(self, rng: random.Random, signup: int, raw: list[_Raw]) -> None:
        # A few marketing page views over the days before signup, ending on the signup page.
        first_visit = signup - int(rng.expovariate(1 / 1.5) * MS_PER_DAY) - MS_PER_HOUR
        referrer = rng.choice(vocab.REFERRERS)
        for _ in range(rng.randint(1, 5)):
            t = first_visit + int(rng.random() * (signup - first_visit - 10 * MS_PER_MINUTE))
            page_name, path, _ = pick(rng, *_MARKETING_PAGES)
            props = dumps(
                {"path": path, "url": vocab.SITE_HOST + path, "title": page_name,
                 "referrer": referrer}
            )  # fmt: skip
            raw.append((t, "page", page_name, props, None, True, True))
        t = signup - rng.randint(20 * MS_PER_SECOND, 5 * MS_PER_MINUTE)
        raw.append((t, "page", "Sign Up", _SIGNUP_PAGE_PROPS[referrer], None, True, True))

    def _signup(self, rng: random.Random, p: UserProfile, signup: int, raw: list[_Raw]) -> None:
        plan = pick(rng, *_PLANS)[0]
        traits: dict[str, object] = {
            "email": p.email,
            "name": p.name,
            "timezone": p.timezone,
            "plan": plan,
            "role": rng.choice(vocab.ROLES),
            "created_at": self.iso(signup),
        }
        if p.is_admin:
            traits["is_admin"] = True
        props: dict[str, object] = {
            "plan": plan,
            "signup_method": pick(rng, *_SIGNUP_METHODS)[0],
        }
        utm = pick(rng, *_UTM)[0]
        if utm is not None:
            props["utm_source"] = utm
        # The browser identifies first, the backend then records the signup.
        raw.append((signup - rng.randint(40, 900), "identify", None, None, dumps(traits),
                    True, False))  # fmt: skip
        raw.append((signup, "track", vocab.SIGNUP_EVENT, dumps(props), None, False, False))

    def _onboarding(
        self, rng: random.Random, persona: Persona, signup: int, raw: list[_Raw]
    ) -> list[int]:
        """Append the onboarding steps the user does; return their times in order."""
        times: list[int] = []
        t = signup
        for k, step in enumerate(vocab.ONBOARDING_STEPS):
            if rng.random() >= persona.step_probs[k]:
                break
            delay = persona.first_step_delay_h if k == 0 else persona.next_step_delay_h
            t += lognormal_ms(rng, *delay, MS_PER_HOUR) + MS_PER_MINUTE
            times.append(t)
            if rng.random() < 0.6:  # often started from the checklist page
                raw.append((t - rng.randint(20_000, 180_000), "page", "Get Started",
                            _GET_STARTED_PROPS, None, True, False))  # fmt: skip
            raw.append((t, "track", step, self._step_props(rng, k), None, False, False))
        return times

    def _step_props(self, rng: random.Random, k: int) -> str:
        if k == 0:
            return dumps({"fields_completed": rng.randint(3, 8), "has_avatar": rng.random() < 0.4})
        if k == 1:
            return dumps({"project_id": f"prj_{rng.getrandbits(32):08x}",
                          "template": rng.choice(vocab.PROJECT_TEMPLATES)})  # fmt: skip
        if k == 2:
            return dumps({"invitee_role": rng.choice(vocab.INVITE_ROLES),
                          "invite_count": rng.randint(1, 4)})  # fmt: skip
        return dumps({"report_id": f"rpt_{rng.getrandbits(32):08x}",
                      "share_channel": rng.choice(vocab.SHARE_CHANNELS)})  # fmt: skip

    def _sessions(
        self,
        rng: random.Random,
        persona: Persona,
        p: UserProfile,
        signup: int,
        churn: int,
        steps: list[int],
        raw: list[_Raw],
    ) -> None:
        """Sessions as a thinned Poisson process from signup until churn (or T)."""
        stop = min(churn, self.end_ms)
        fade_ms = int(rng.uniform(*persona.fade_d) * MS_PER_DAY)
        quiet_week = -1
        day = 0
        day_start = signup
        while day_start < stop:
            if day % 7 == 0:
                quiet_week = day // 7 if rng.random() < persona.quiet_week_prob else -1
            rate = persona.sessions_per_day
            if day < 3:
                rate *= 1.8  # the first days after signup are the most active
            if quiet_week == day // 7:
                rate *= 0.15
            remaining = churn - day_start
            if remaining < fade_ms:
                rate *= max(0.08, remaining / fade_ms)
            for _ in range(poisson(rng, rate / _MEAN_ACCEPT)):
                t = day_start + int(rng.random() * MS_PER_DAY)
                if t < stop and rng.random() < _accept_weight(t, p.offset_ms):
                    self._session(rng, p, t, steps, raw)
            day += 1
            day_start += MS_PER_DAY

    def _session(
        self, rng: random.Random, p: UserProfile, t: int, steps: list[int], raw: list[_Raw]
    ) -> None:
        # Hot path: `int(random() * n)` instead of randint/choice, which cost ~4x more.
        rand = rng.random
        if rand() < 0.7:
            page_name = pick(rng, *_APP_PAGES)[0]
            raw.append((t, "page", page_name, _APP_PAGE_PROPS[page_name], None, True, False))
        n_track = 1
        while n_track < 8 and rand() < 0.55:
            n_track += 1
        for _ in range(n_track):
            t += 3_000 + int(rand() * 147_000)  # 3 s to 2.5 min between actions
            event = pick(rng, *_ACTIVITY)[0]
            raw.append((t, "track", event, self._activity_props(rng, p, event), None,
                        True, False))  # fmt: skip
        # Users past the invite step keep inviting now and then (step events repeat).
        if len(steps) >= 3 and steps[2] < t and rng.random() < 0.03:
            t += rng.randint(3_000, 60_000)
            raw.append((t, "track", vocab.ONBOARDING_STEPS[2], self._step_props(rng, 2),
                        None, False, False))  # fmt: skip

    def _activity_props(self, rng: random.Random, p: UserProfile, event: str) -> str:
        # f-strings and `int(random() * n)` instead of json.dumps and randint/choice: this
        # runs for most of the ten million events.
        rand = rng.random
        if event == "Dashboard Viewed":
            board, load_ms = 1 + int(rand() * 39), 80 + int(rand() * 3900)
            return f'{{"dashboard_id":"dsh_{board}","load_ms":{load_ms}}}'
        if event == "Report Viewed":
            report = rng.getrandbits(24)
            source = _REPORT_SOURCES[int(rand() * 4)]
            return f'{{"report_id":"rpt_{report:06x}","source":"{source}"}}'
        projects = p.project_ids
        if event == "Project Updated":
            change = _PROJECT_CHANGES[int(rand() * 4)]
            project = projects[int(rand() * len(projects))]
            return f'{{"project_id":"{project}","change":"{change}"}}'
        if event == "Search Performed":
            return f'{{"query_length":{2 + int(rand() * 38)},"results":{int(rand() * 120)}}}'
        if event == "Comment Added":
            project = projects[int(rand() * len(projects))]
            return f'{{"project_id":"{project}","length":{3 + int(rand() * 600)}}}'
        return f'{{"format":"{_EXPORT_FORMATS[int(rand() * 3)]}"}}'

    def _trait_update(
        self, rng: random.Random, p: UserProfile, signup: int, churn: int, raw: list[_Raw]
    ) -> None:
        start = signup + MS_PER_DAY
        stop = min(churn, self.end_ms)
        if stop <= start:
            return
        t = start + int(rng.random() * (stop - start))
        traits: dict[str, object] = {"email": p.email}
        kind = rng.random()
        if kind < 0.5:
            traits["timezone"] = pick(rng, *TIMEZONE_TABLE)[0]  # moved, or fixed a typo
        elif kind < 0.8:
            traits["plan"] = "team"
        else:
            traits["name"] = p.name.split(" ")[0] + " " + rng.choice(vocab.LAST_NAMES)
        raw.append((t, "identify", None, None, dumps(traits), True, False))

    # -- rendering -----------------------------------------------------------------------

    def _render(self, rng: random.Random, p: UserProfile, raw: list[_Raw]) -> list[Record]:
        end_ms = self.end_ms
        iso = self.iso
        rand = rng.random
        log = math.log
        records: list[Record] = []
        for t, typ, label, props, traits, browser, anonymous in raw:
            # Delivery delay (exponential): mostly sub-second, now and then seconds on a
            # slow network.
            lag = 5 + int(-log(1.0 - rand()) * (300 if rand() < 0.97 else 4000))
            received = t + lag
            if received >= end_ms:
                break  # raw is in time order: everything after is not received by T either
            if anonymous:
                uid: str | int | None = None
            elif p.numeric_id is not None:
                uid = p.numeric_id
            else:
                uid = p.user_id
            aid = p.anonymous_id if (anonymous or browser) else None
            records.append(
                (
                    uuid4_from(rng),
                    typ,
                    label if typ == "track" else None,
                    label if typ == "page" else None,
                    uid,
                    aid,
                    iso(t),
                    iso(received),
                    props,
                    traits,
                    p.browser_context if browser else p.server_context,
                )
            )
        return records


def _by_time(item: _Raw) -> int:
    return item[0]
