"""The prop-firm lifecycle of the partner quickstart, with polysim-async.

Register a trader, email a login link, open a $10,000 challenge with rules,
read its live state, page every fill, then close and reset the attempt.

Needs POLYSIM_TENANT_KEY (and POLYSIM_BASE_URL unless you target production).
Against the local sandbox: run ``polysim sandbox`` and export what it prints.
"""

from __future__ import annotations

import asyncio

from polysim_async import Client


async def main() -> None:
    async with Client() as client:  # key and URL from POLYSIM_TENANT_KEY / POLYSIM_BASE_URL
        partner = client.partner

        user = await partner.users.register(
            "pc_trader_123", "trader@example.com", metadata={"country": "ES"}
        )
        print(f"trader user_id={user.user_id} created={user.created}")

        await partner.users.send_login_link(
            user.user_id, redirect_url="https://polysimulator.com/markets"
        )
        print("magic link dispatched")

        account = await partner.accounts.create(
            user_id=user.user_id,
            external_id="pc_challenge_001",
            stage="challenge",
            starting_balance="10000.00",
            metadata={"plan": "10k", "attempt": 1},
            rules={"profit_target_pct": 20, "max_drawdown_pct": 10},
        )
        print(f"account_id={account.account_id} wallet_id={account.wallet_id}")

        # ... the trader signs in through the link and trades in the native UI ...

        state = await partner.accounts.get(account.account_id)
        print(f"equity={state.equity} unrealized={state.unrealized_pnl}")

        fills = [trade async for trade in partner.accounts.trades(account.account_id)]
        print(f"{len(fills)} fills")

        closed = await partner.accounts.close(account.account_id)
        print(f"closed: status={closed.status.value}")
        reset = await partner.accounts.reset(account.account_id)
        print(f"reset: status={reset.status.value} balance={reset.balance}")


if __name__ == "__main__":
    asyncio.run(main())
