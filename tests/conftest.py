"""Shared fixtures: one simulator server on loopback for the whole session, reset per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fillguard.sim import SimServer, run_simulator


@pytest.fixture(autouse=True)
def _fillguard_process_state() -> Iterator[None]:
    """Every test starts without another test's trackers, stream connections or budgets."""
    yield
    from fillguard import budget
    from fillguard.accounts import shutdown_all

    shutdown_all()
    with budget._registry_lock:
        budget._registry.clear()


@pytest.fixture(autouse=True)
def _private_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default journals go to a fresh state directory per test, never the user's."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimServer]:
    """The simulator on a free loopback port (calm, seed 0, no rate limit), stopped at the end."""
    with run_simulator(port=0, faults="calm", seed=0, rate_limit=None) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimServer) -> Iterator[SimServer]:
    """The session simulator, reset to a fresh calm broker; fails the test on any server bug."""
    sim_server.api.rate_limit = None
    sim_server.reset("calm")
    errors = sim_server.errors.count
    yield sim_server
    sim_server.api.rate_limit = None
    sim_server.set_faults("calm")
    assert sim_server.errors.count == errors, f"simulator answered 500: {sim_server.errors.last}"
