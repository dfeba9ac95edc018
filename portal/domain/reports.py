"""What the dashboard reports: expiring certificates, replacements, a 12-month timeline."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from portal.domain.inforce import in_force
from portal.domain.vocab import USAGES_IN_FORCE

BUCKETS = (7, 30, 90)
# The staff's daily digest looks closer (portal.services.reminders), and so does the dashboard.
DIGEST_BUCKETS = (1, 7, 14, 30, 90)
DASHBOARD_BUCKETS = DIGEST_BUCKETS
WEEKS = 52


@dataclass(frozen=True)
class CertRow:
    """A certificate as the reports see it."""

    id: int
    owner: str  # "identity:3" or "partner:7": certificates of one owner replace each other
    owner_name: str
    usage: str
    not_after: datetime
    activate_at: datetime | None
    withdrawn_at: datetime | None
    approved_at: datetime | None = None  # unused by the reports; the in-force rule reads it


@dataclass(frozen=True)
class Expiring:
    """A certificate in force that expires soon, and what replaces it."""

    certificate: CertRow
    usage: str
    days_left: int
    bucket: int
    replacement: CertRow | None


@dataclass(frozen=True)
class Week:
    """One week of the timeline."""

    start: datetime
    expiries: int
    activations: int


def expiring_soon(
    rows: Sequence[CertRow],
    *,
    now: datetime,
    overlap: timedelta,
    buckets: Sequence[int] = BUCKETS,
) -> list[Expiring]:
    """Certificates in force expiring within the largest bucket (days), soonest first, with
    their replacement; each in the smallest bucket it is within (BUCKETS ascending)."""
    by_owner: dict[str, list[CertRow]] = {}
    for row in rows:
        by_owner.setdefault(row.owner, []).append(row)
    found: list[Expiring] = []
    for owned in by_owner.values():
        for usage in USAGES_IN_FORCE:
            state = in_force(owned, usage, at=now, overlap=overlap)
            active = state.active
            if active is None:
                continue
            days_left = (active.not_after - now).days
            if days_left >= max(buckets):
                continue
            bucket = bucket_of(days_left, buckets)
            replacement = next((c for c in state.scheduled if c.not_after > active.not_after), None)
            found.append(Expiring(active, usage, days_left, bucket, replacement))
    return sorted(found, key=lambda e: (e.certificate.not_after, e.certificate.owner_name))


def bucket_of(days_left: int, buckets: Sequence[int] = BUCKETS) -> int:
    """The smallest of BUCKETS (days) that DAYS_LEFT is within (the largest when none is)."""
    ordered = sorted(buckets)
    return next((b for b in ordered if days_left < b), ordered[-1])


@dataclass(frozen=True)
class ExpiryLine:
    """One line of the dashboard's expiry table: in force, expiring within DAYS (0: expired)."""

    days: int
    replaced: int  # with a replacement scheduled
    unreplaced: int  # with none: at risk

    @property
    def total(self) -> int:
        """Both together."""
        return self.replaced + self.unreplaced


def expiry_lines(
    counts: dict[tuple[int, bool], int], buckets: Sequence[int] = DASHBOARD_BUCKETS
) -> list[ExpiryLine]:
    """Cumulative lines (expired, then within each of BUCKETS) from COUNTS per
    (smallest bucket, 0 for expired; replaced?): "within 7 days" includes the expired."""
    lines = []
    for days in (0, *sorted(buckets)):
        included = [b for b in (0, *buckets) if b <= days]
        lines.append(
            ExpiryLine(
                days,
                sum(counts.get((b, True), 0) for b in included),
                sum(counts.get((b, False), 0) for b in included),
            )
        )
    return lines


def weekly_timeline(
    expiries: Iterable[datetime], activations: Iterable[datetime], *, start: datetime
) -> list[Week]:
    """Counts per week for the next 52 weeks from START."""
    expiry_counts = [0] * WEEKS
    activation_counts = [0] * WEEKS
    for moments, counts in ((expiries, expiry_counts), (activations, activation_counts)):
        for moment in moments:
            index = (moment - start).days // 7
            if 0 <= index < WEEKS:
                counts[index] += 1
    return [
        Week(start + timedelta(weeks=i), expiry_counts[i], activation_counts[i])
        for i in range(WEEKS)
    ]


# Weeks between two month labels at least: closer ones would overlap.
MONTH_LABEL_GAP = 3


def timeline_svg(weeks: Sequence[Week]) -> str:
    """A bar chart of the weeks as inline SVG: expiries above the line, activations below."""
    bar, gap, half = 12, 2, 60
    peak = max([1, *(w.expiries for w in weeks), *(w.activations for w in weeks)])
    width = len(weeks) * (bar + gap) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {2 * half + 40}" '
        'role="img" aria-labelledby="timeline-title" class="timeline">',
        '<title id="timeline-title">Expiries (above) and scheduled activations (below) '
        "per week, next 12 months</title>",
        f'<line x1="30" y1="{half + 10}" x2="{width}" y2="{half + 10}" class="axis"/>',
    ]
    labels: list[tuple[int, str]] = []  # (x, month) of each month's first week
    for index, week in enumerate(weeks):
        x = 30 + index * (bar + gap)
        label = f"week of {week.start:%Y-%m-%d}"
        if week.expiries:
            height = round(week.expiries / peak * (half - 5))
            parts.append(
                f'<rect x="{x}" y="{half + 10 - height}" width="{bar}" height="{height}" '
                f'class="expiry"><title>{escape(label)}: {week.expiries} expiring</title></rect>'
            )
        if week.activations:
            height = round(week.activations / peak * (half - 5))
            parts.append(
                f'<rect x="{x}" y="{half + 10}" width="{bar}" height="{height}" '
                f'class="activation"><title>{escape(label)}: {week.activations} '
                "activating</title></rect>"
            )
        if not labels or week.start.month != weeks[index - 1].start.month:
            # A month that began less than three weeks after the last label would print over
            # it: the newer month keeps the place.
            if labels and x - labels[-1][0] < MONTH_LABEL_GAP * (bar + gap):
                labels.pop()
            labels.append((x, f"{week.start:%b}"))
    parts += [f'<text x="{x}" y="{2 * half + 35}" class="month">{m}</text>' for x, m in labels]
    if any(w.expiries or w.activations for w in weeks):
        parts.append(f'<text x="0" y="20" class="legend">{peak}</text>')  # the scale's top
    parts.append("</svg>")
    return "".join(parts)
