"""Operator status time cut into days equals the period's time asked day by day, and the
seek-based totals of given operators equal the plain clipped sum."""

from __future__ import annotations

import random
from pathlib import Path

from sipspeak.storage import Database

DAY = 86_400_000
T0 = 1_772_400_000_000


async def test_days_add_up_to_what_each_day_holds(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "s.db")
    try:
        users = [await db.users.create(role="operator", full_name=f"o{i}", email=f"o{i}@x.test",
                                       password_hash="x") for i in range(3)]
        rng = random.Random(7)
        rows: list[tuple[int, str, int, int | None]] = []
        for user in users:
            t = T0 - DAY  # history from before the period
            while t < T0 + 5 * DAY:
                # Mostly minutes; now and then a state that lasts over a day or two.
                length = rng.randint(1_000, 900_000) if rng.random() > 0.02 else rng.randint(
                    DAY // 2, 2 * DAY)
                rows.append((user, rng.choice(["available", "talking", "paused"]), t,
                             t + length))
                t += length
        rows.append((users[0], "wrap_up", T0 + 6 * DAY, None))  # still open: ends "now"
        await db.executemany("INSERT INTO operator_intervals(user_id, state, started_at, "
                             "ended_at) VALUES (?, ?, ?, ?)", rows)
        days = [(T0 + i * DAY + 7_200_000, T0 + (i + 1) * DAY + 7_200_000) for i in range(7)]
        now = T0 + 6 * DAY + 10_000_000  # within the last day
        by_day = await db.intervals.totals_by_day(days=days, now=now, user_ids=users[:2])
        for index, (start, end) in enumerate(days):
            # The plain clipped sum over every user's intervals (no seeks) is the reference.
            expected = {(u, s): ms for (u, s), ms in (await db.intervals.totals(
                start=start, end=end, now=now)).items() if ms and u in users[:2]}
            asked = {(u, s): ms for (u, s), ms in (await db.intervals.totals(
                start=start, end=end, now=now, user_ids=users[:2])).items() if ms}
            assert asked == expected, index
            got = {(u, s): ms for (d, u, s), ms in by_day.items() if d == index}
            assert got == expected, index
        assert {u for _, u, _ in by_day} == set(users[:2])  # only the users asked for
        assert by_day[(6, users[0], "wrap_up")] > 0
        assert await db.intervals.totals_by_day(days=days, now=now, user_ids=[]) == {}
    finally:
        await db.close()
