"""How a PATCH of a campaign meets its stored definition: pure, so every rule of the merge is a
row of a table-driven test (tests/services/api/campaigns/test_edits.py) rather than a request.

The endpoint reads and locks the row, and applies what these functions decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.api.campaigns.models import (
    NOT_NULL,
    CampaignPatch,
    CampaignSettings,
    SettingsPatch,
    flow_errors,
    plan_errors,
)
from services.api.problems import field_error
from shared.domain.campaigns import CampaignStatus, FieldGroup, LaunchType

# The stored columns a PATCH may change, in the order the update query binds them.
EDITABLE = (
    "name",
    "description",
    "telegram_account_id",
    "timezone",
    "launch_type",
    "scheduled_at",
    "recurrence",
    "flow",
    "settings",
    "tags",
)
_PLAN = {"launch_type", "scheduled_at", "recurrence"}
# Fields that move a scheduled campaign's next run (and so answer a missed one).
REPLANS = frozenset({*_PLAN, "timezone"})
# Settings groups that are one value, not a set of independent options.
WHOLE_GROUPS = frozenset({"active_hours"})


def null_errors(patch: CampaignPatch) -> list[dict[str, Any]]:
    """A field the definition cannot do without, sent as null."""
    present = patch.model_fields_set
    return [
        field_error(name, f"{name} cannot be null", "missing")
        for name in NOT_NULL
        if name in present and getattr(patch, name) is None
    ]


def merge(stored: Mapping[str, Any], patch: CampaignPatch) -> dict[str, Any]:
    """The definition with the patch applied: a field present replaces the stored one (null
    clears it), an absent one stays. Settings merge field by field inside each group, so a
    patch of `response_handling.reply_tag` keeps the stored `stop_on_reply` and `ab_test`;
    `active_hours` is one window, replaced whole (null clears it); null for another group
    resets it to its defaults."""
    merged = {name: stored[name] for name in EDITABLE}
    for name in patch.model_fields_set - {"settings"}:
        value = getattr(patch, name)
        merged[name] = value.value if isinstance(value, LaunchType) else value
    if patch.settings is not None:
        merged["settings"] = merge_settings(merged["settings"] or {}, patch.settings)
    return merged


def merge_settings(stored: Mapping[str, Any], patch: SettingsPatch) -> dict[str, Any]:
    settings = dict(stored)
    defaults = CampaignSettings().model_dump(mode="json")
    for group, value in patch.model_dump(mode="json", exclude_unset=True).items():
        if group in WHOLE_GROUPS:
            whole = getattr(patch, group)
            settings[group] = None if whole is None else whole.model_dump(mode="json")
        elif value is None:
            settings[group] = defaults[group]
        else:
            settings[group] = {**(stored.get(group) or defaults[group]), **value}
    return settings


def merged_errors(
    status: CampaignStatus, merged: Mapping[str, Any], patch: CampaignPatch
) -> list[dict[str, Any]]:
    """The merged definition's own rules, checked for what the patch touched (the account's
    existence needs the database and is the endpoint's)."""
    present = patch.model_fields_set
    errors = []
    if present & _PLAN:
        launch_type = LaunchType(merged["launch_type"])
        errors += plan_errors(launch_type, merged["scheduled_at"], merged["recurrence"])
        if status is CampaignStatus.SCHEDULED and launch_type not in (
            LaunchType.SCHEDULE,
            LaunchType.RECURRING,
        ):
            errors.append(
                field_error(
                    "launch_type",
                    "a scheduled campaign keeps a schedule or recurring "
                    "launch type; pause or stop it to change that",
                )
            )
    if "flow" in present:
        errors += flow_errors(merged["flow"])
    return errors


def field_groups(patch: CampaignPatch) -> set[FieldGroup]:
    """What the patch edits, as the edit rules (shared.domain.campaigns.edit_refusal) group it."""
    groups = set()
    present = patch.model_fields_set
    if present & {"name", "description", "telegram_account_id", "timezone", "tags"}:
        groups.add(FieldGroup.METADATA)
    if present & {"flow", *_PLAN}:
        groups.add(FieldGroup.FLOW)
    if patch.settings is not None:
        if "ab_test" in patch.settings.model_fields_set:
            groups.add(FieldGroup.AB_TEST)
        if patch.settings.model_fields_set & {"response_handling", "active_hours"}:
            groups.add(FieldGroup.METADATA)
    return groups
