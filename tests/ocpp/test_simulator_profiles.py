"""How the simulated charger combines the charging profiles it holds (OCPP 1.6 §3.13), without a server: the
transaction's TxProfile wins over TxDefaultProfiles (connector's own before connector 0's), the highest stack level
of a purpose wins, the ChargePointMaxProfile is shared by the charging connectors, and a TxProfile ends with its
transaction."""

from __future__ import annotations

import json
from typing import Any

from apps.ocpp.simulator import ChargerState, SimConfig, SimulatedCharger


def profile(purpose: str, limit: float, unit: str = "A", *, level: int = 0, tx: int | None = None) -> dict[str, Any]:
    """As the `ocpp` package hands csChargingProfiles to the handler (snake_case keys)."""
    data: dict[str, Any] = {
        "charging_profile_id": 1,
        "stack_level": level,
        "charging_profile_purpose": purpose,
        "charging_profile_kind": "Relative",
        "charging_schedule": {
            "charging_rate_unit": unit,
            "charging_schedule_period": [{"start_period": 0, "limit": limit}],
        },
    }
    if tx is not None:
        data["transaction_id"] = tx
    return data


def charger(**profiles: tuple[int, dict[str, Any]]) -> ChargerState:
    state = ChargerState("CP", SimConfig(url="ws://unused", power_w=22_080))
    for connector, data in profiles.values():
        state.profiles[(connector, data["charging_profile_purpose"], data["stack_level"])] = data
    return state


def test_the_transaction_profile_wins_over_the_default_and_the_hardware_caps_both() -> None:
    state = charger(default=(0, profile("TxDefaultProfile", 6)), tx=(1, profile("TxProfile", 16, tx=42)))
    state.transactions = {1: 42, 2: 43}

    assert state.limit_w(1) == 16 * 230 * 3  # its TxProfile, not the 6 A default
    assert state.limit_w(2) == 6 * 230 * 3  # no TxProfile of its own: the default


def test_a_connector_default_beats_connector_zero_and_the_highest_stack_level_wins() -> None:
    state = charger(
        zero=(0, profile("TxDefaultProfile", 6)),
        own=(2, profile("TxDefaultProfile", 10)),
        own_higher=(2, profile("TxDefaultProfile", 12, level=3)),
    )
    state.transactions = {1: 7, 2: 8}

    assert (state.limit_w(1), state.limit_w(2)) == (6 * 690, 12 * 690)


def test_a_tx_profile_of_another_transaction_does_not_apply_and_ends_with_its_own() -> None:
    state = charger(tx=(1, profile("TxProfile", 10, tx=41)))
    state.transactions = {1: 42}
    assert state.limit_w(1) == 22_080  # 41 is over: the hardware's limit

    state.profiles[(1, "TxProfile", 0)] = profile("TxProfile", 10, tx=42)
    assert state.limit_w(1) == 10 * 690
    state.transaction_ended(1, 42)
    assert state.profiles == {}


def test_the_charge_point_maximum_is_shared_by_the_charging_connectors() -> None:
    state = charger(cp_max=(0, profile("ChargePointMaxProfile", 11_000, "W")))
    state.transactions = {1: 1}
    assert state.limit_w(1) == 11_000

    state.transactions = {1: 1, 2: 2}
    assert (state.limit_w(1), state.limit_w(2)) == (5_500, 5_500)


class _Socket:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: str) -> None:
        self.sent.append(message)


async def test_a_profile_is_answered_after_the_platform_built_its_command_form_in_the_same_process() -> None:
    """The simulator runs as a Django command: when the platform's SetChargingProfile form (built from the `ocpp`
    package's schema) was made first, the package must still validate the profile it receives (it crashed the
    connection with a TypeError on every profile the demo's smart charging sent)."""
    import ocpp.messages

    from apps.stations.api.serializers import command_serializer

    ocpp.messages._validators.clear()
    command_serializer.cache_clear()
    command_serializer("SetChargingProfile")  # the platform's form first, as in `manage.py simulate_chargers`
    state = ChargerState("CP", SimConfig(url="ws://unused", power_w=22_080))
    state.transactions = {1: 42}
    socket = _Socket()
    cp = SimulatedCharger("CP", socket, state)
    frame = [2, "u1", "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": _wire(31.8)}]

    await cp.route_message(json.dumps(frame))

    assert [json.loads(m) for m in socket.sent] == [[3, "u1", {"status": "Accepted"}]]
    assert state.limit_w(1) == int(31.8 * 230 * 3)


def _wire(limit: float) -> dict[str, Any]:
    return {
        "chargingProfileId": 800_001,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "transactionId": 42,
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit, "numberPhases": 3}],
        },
    }
