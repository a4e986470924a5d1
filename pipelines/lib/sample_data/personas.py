"""The behaviour model: who signs up, how far they get in onboarding, how long they stay.

Each user is drawn into one persona. A persona does not say which nurture segment the
user lands in: that follows from *when* things happen relative to the pipeline clock T
(a user who churned 10 days ago is dormant, 40 days ago lapsed, 3 days ago declining),
so every segment of docs/architecture.md §5 appears for any T without depending on the calendar.

Calibrated so that the default sample (5000 users, 60 days, seed 7) gives the baseline
KPIs of docs/architecture.md: conversion ≈ 27.8 %, completion ≈ 48 %, inactivity ≈ 72.2 %.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    name: str
    weight: float
    # P(step k | step k-1 done), k = 1..4: the realistic funnel drop-off.
    step_probs: tuple[float, float, float, float]
    # Lognormal delays in hours (median, sigma): signup → step 1, then step k → k+1.
    first_step_delay_h: tuple[float, float]
    next_step_delay_h: tuple[float, float]
    # Lognormal engagement lifetime in days from signup (median, sigma), and how long the
    # user keeps using the product after the last step they ever do.
    lifetime_d: tuple[float, float]
    linger_d: tuple[float, float]
    sessions_per_day: float
    # Activity fades out over this many days before churn: the "declining" pattern.
    fade_d: tuple[float, float]
    # Chance per week of a quiet week (holiday, busy elsewhere) at a fraction of the rate.
    quiet_week_prob: float
    # Chance of one stray visit after churning (a lapsed user peeking back in).
    return_prob: float


PERSONAS: tuple[Persona, ...] = (
    # Healthy converters: do all four steps within days and keep using the product.
    Persona(
        name="champion",
        weight=0.11,
        step_probs=(0.99, 0.98, 0.96, 0.96),
        first_step_delay_h=(1.0, 1.2),
        next_step_delay_h=(10.0, 1.1),
        lifetime_d=(120.0, 0.8),
        linger_d=(60.0, 0.6),
        sessions_per_day=0.9,
        fade_d=(3.0, 10.0),
        quiet_week_prob=0.10,
        return_prob=0.10,
    ),
    # Achievers finish onboarding (some of them after the 14-day window), then drift
    # away within weeks: the dormant, declining and later lapsed users.
    Persona(
        name="achiever",
        weight=0.28,
        step_probs=(0.97, 0.92, 0.87, 0.92),
        first_step_delay_h=(4.0, 1.5),
        next_step_delay_h=(24.0, 1.2),
        lifetime_d=(6.0, 0.6),
        linger_d=(4.0, 0.7),
        sessions_per_day=0.7,
        fade_d=(4.0, 12.0),
        quiet_week_prob=0.15,
        return_prob=0.08,
    ),
    # Dabblers start, do one to three steps, and stall.
    Persona(
        name="dabbler",
        weight=0.22,
        step_probs=(0.92, 0.50, 0.40, 0.0),
        first_step_delay_h=(6.0, 1.6),
        next_step_delay_h=(30.0, 1.3),
        lifetime_d=(3.0, 0.9),
        linger_d=(2.0, 0.9),
        sessions_per_day=0.45,
        fade_d=(2.0, 6.0),
        quiet_week_prob=0.2,
        return_prob=0.05,
    ),
    # Tourists sign up, look around once or twice, and never start onboarding.
    Persona(
        name="tourist",
        weight=0.39,
        step_probs=(0.0, 0.0, 0.0, 0.0),
        first_step_delay_h=(24.0, 1.0),
        next_step_delay_h=(24.0, 1.0),
        lifetime_d=(1.5, 1.0),
        linger_d=(1.0, 1.0),
        sessions_per_day=0.5,
        fade_d=(1.0, 3.0),
        quiet_week_prob=0.2,
        return_prob=0.02,
    ),
)

_CUMULATIVE: tuple[float, ...] = tuple(
    sum(p.weight for p in PERSONAS[: i + 1]) for i in range(len(PERSONAS))
)


def pick_persona(rng: random.Random) -> Persona:
    """Draw a persona by weight (weights need not sum to exactly 1)."""
    x = rng.random() * _CUMULATIVE[-1]
    for persona, edge in zip(PERSONAS, _CUMULATIVE, strict=True):
        if x < edge:
            return persona
    return PERSONAS[-1]
