"""Fixtures of the authentication tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.app import AppState
from tests.auth.clock import FakeClock


@pytest.fixture
def clock(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """The service's clock, moved by the test (`clock.advance(seconds)`)."""
    fake = FakeClock()
    monkeypatch.setattr(state, "clock", fake)
    yield fake
