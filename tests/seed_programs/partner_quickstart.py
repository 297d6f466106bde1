# The "Putting it together" program of the partner quickstart seed
# (shared/seeds/partner-quickstart.txt), unchanged except for line breaks and the
# __main__ block, which the tests replace with the control API's trading step.
# ruff: noqa
import os, requests

KEY = os.environ["POLYSIM_TENANT_KEY"]
BASE = os.environ.get("POLYSIM_BASE_URL", "https://api.polysimulator.com")
H = {"X-API-Key": KEY, "Content-Type": "application/json"}


def register_trader(external_id, email):
    r = requests.post(
        f"{BASE}/v1/partner/users", headers=H, json={"external_id": external_id, "email": email}
    )
    r.raise_for_status()
    return r.json()["user_id"]


def send_login(user_id, redirect="https://polysimulator.com/markets"):
    requests.post(
        f"{BASE}/v1/partner/users/{user_id}/login-link", headers=H, json={"redirect_url": redirect}
    ).raise_for_status()


def create_challenge(user_id, external_id, balance="10000.00"):
    r = requests.post(
        f"{BASE}/v1/partner/accounts",
        headers=H,
        json={
            "user_id": user_id,
            "external_id": external_id,
            "stage": "challenge",
            "starting_balance": balance,
        },
    )
    r.raise_for_status()
    return r.json()["account_id"]


def evaluate(account_id):
    state = requests.get(f"{BASE}/v1/partner/accounts/{account_id}", headers=H).json()
    cursor, fills = None, []
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            f"{BASE}/v1/partner/accounts/{account_id}/trades", headers=H, params=params
        ).json()
        fills.extend(page["data"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    # Your rule engine runs here, on `state` + `fills`.
    return state, fills
