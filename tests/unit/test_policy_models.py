"""The three shapes of a policy list the same fields: created (defaults), replaced (all), changed (some)."""

from __future__ import annotations

import msgspec
import pytest

from timebank.communities.models import Policy, PolicyChange, PolicyReplace


def test_the_policy_shapes_list_the_same_fields() -> None:
    assert Policy.__struct_fields__ == PolicyReplace.__struct_fields__ == PolicyChange.__struct_fields__


def test_replace_requires_every_field_and_change_none() -> None:
    assert all(field.required for field in msgspec.structs.fields(PolicyReplace))
    assert not any(field.required for field in msgspec.structs.fields(PolicyChange))
    assert not any(field.required for field in msgspec.structs.fields(Policy))


def test_a_change_tells_which_fields_it_gives() -> None:
    change = msgspec.json.decode(b'{"time_zone": "UTC", "unit_minutes": 30}', type=PolicyChange)
    assert change.given() == {"unit_minutes": 30, "time_zone": "UTC"}
    assert msgspec.json.decode(b"{}", type=PolicyChange).given() == {}
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"unit_minutes": null}', type=PolicyChange)
