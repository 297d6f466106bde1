"""The pytest plugin shipped with the package: fixtures, marker, and how it loads.

Each scenario runs a small test file in a fresh pytest process (``pytester``),
so the plugin is found through its ``pytest11`` entry point exactly as in a
user's project.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

USER_TESTS = """
import asyncio

import pytest

import polysim_async as ps


async def test_fixtures_are_ready(polysim_sandbox, polysim_client):
    assert polysim_client.base_url == polysim_sandbox.url
    user = await polysim_client.partner.users.register("t-1", "t@example.com")
    account = await polysim_client.partner.accounts.create(
        user_id=user.user_id, external_id="a-1", stage="challenge", starting_balance="10000"
    )
    t0 = polysim_sandbox.now()
    await polysim_sandbox.place_order(
        account_id=account.account_id, market_id=polysim_sandbox.market_id,
        side="BUY", outcome="Yes", quantity="10", price="0.60",
    )
    assert polysim_sandbox.now() == t0  # the simulated clock is frozen
    trades = [t async for t in polysim_client.partner.accounts.trades(account.account_id)]
    assert len(trades) == 1


async def test_a_burst_with_a_frozen_clock_is_not_wedged(polysim_sandbox, polysim_client):
    # Issue 9, defect 1: with the simulated clock frozen, the sandbox counted every
    # request in one simulated instant and answered 429 forever after 50.
    users = await asyncio.gather(
        *(polysim_client.partner.users.register(f"u-{i}", f"u{i}@e.co") for i in range(60))
    )
    assert len({u.user_id for u in users}) == 60


@pytest.mark.polysim(seed=3, tier="free", key="trader")
async def test_the_marker_configures_both(polysim_sandbox, polysim_client):
    balance = await polysim_client.account.balance()
    assert balance.starting_balance == 100  # the free tier's baseline
    assert polysim_sandbox.api_key.startswith("ps_live_")


def test_a_sync_test_is_unaffected():
    assert True


@pytest.mark.polysim(key="admin")
async def test_an_unknown_role(polysim_client):
    pass


@pytest.mark.polysim(3)
async def test_a_positional_argument(polysim_sandbox):
    pass
"""


def _run(pytester: pytest.Pytester, mode: str, tests: str) -> pytest.RunResult:
    pytester.makeini(INI.format(mode=mode))
    pytester.makepyfile(test_user=tests)
    return pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")


def test_the_fixtures_in_auto_mode(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "auto", USER_TESTS)
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(['*key=...) is "tenant" or "trader"*', "*keyword arguments only*"])


def test_the_fixtures_in_strict_mode(pytester: pytest.Pytester) -> None:
    tests = """
import pytest

@pytest.mark.asyncio
async def test_strict(polysim_sandbox, polysim_client):
    user = await polysim_client.partner.users.register("t-1", "t@example.com")
    assert user.created
"""
    result = _run(pytester, "strict", tests)
    result.assert_outcomes(passed=1)


def test_loading_the_plugin_imports_neither_the_client_nor_aiohttp() -> None:
    code = textwrap.dedent(
        """
        import sys
        import polysim_async_pytest
        heavy = [m for m in ("polysim_async", "aiohttp") if m in sys.modules]
        print(heavy)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_without_pytest_asyncio_the_plugin_loads_and_sync_tests_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    # pytest-asyncio made unimportable, and its plugin off: a user who never installed it.
    runner = textwrap.dedent(
        """
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "pytest_asyncio":
                    raise ModuleNotFoundError(name)

        sys.meta_path.insert(0, Block())
        import pytest
        sys.exit(pytest.main(["-q", "-p", "no:asyncio", "-p", "no:cacheprovider", "--fixtures"]))
        """
    )

    def run(target: str) -> str:
        script = runner.replace('"--fixtures"', target)
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=pytester.path,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    listing = run('"--fixtures"')
    assert "polysim_sandbox" in listing and "polysim_client" in listing
    assert "1 passed" in run('"test_plain.py"')
