"""Companies, pipelines and opportunities (shared/domain/crm.py), table by table."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from shared.domain.crm import (
    CompanyOnReply,
    Opportunity,
    OpportunityStatus,
    OpportunityUpdate,
    Outcome,
    StagePlan,
    StageRefusal,
    StageSpec,
    display_name,
    normal_channel,
    normal_domain,
    on_company_reply,
    plan_stages,
    upsert,
)
from shared.domain.executions import ExecutionStatus as S

A, B, C, D = (UUID(int=n) for n in range(1, 5))


@pytest.mark.parametrize(
    ("raw", "domain"),
    [
        ("acme.com", "acme.com"),
        ("  ACME.com ", "acme.com"),
        ("https://www.Acme.com/about?x=1", "acme.com"),
        ("http://shop.acme.co.uk/", "shop.acme.co.uk"),
        ("acme.com.", "acme.com"),
        ("xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
    ],
)
def test_a_domain_has_one_spelling(raw: str, domain: str) -> None:
    assert normal_domain(raw) == domain


@pytest.mark.parametrize("raw", ["acme", "acme..com", "-acme.com", "acme.c", "ac me.com", "@acme"])
def test_a_domain_that_is_not_one_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        normal_domain(raw)


@pytest.mark.parametrize(
    ("raw", "channel"),
    [
        ("acme_news", "acme_news"),
        ("@AcmeNews", "AcmeNews"),
        ("https://t.me/acme_news", "acme_news"),
        ("t.me/acme_news/", "acme_news"),
        ("http://telegram.me/AcmeNews", "AcmeNews"),
    ],
)
def test_a_channel_is_its_username(raw: str, channel: str) -> None:
    assert normal_channel(raw) == channel


@pytest.mark.parametrize("raw", ["abc", "1acme", "https://t.me/+invitehash", "acme-news", "@"])
def test_a_channel_that_is_not_a_username_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="Telegram channel"):
        normal_channel(raw)


@pytest.mark.parametrize(
    ("existing", "requested", "in_use", "result"),
    [
        ([], [StageSpec("New"), StageSpec("Won")], set(), StagePlan([], [("New", 0), ("Won", 1)],
                                                                     frozenset())),
        ([A, B], [StageSpec("Second", B), StageSpec("First", A)], set(),
         StagePlan([(B, "Second", 0), (A, "First", 1)], [], frozenset())),
        ([A, B], [StageSpec("A", A), StageSpec("Middle"), StageSpec("B", B)], set(),
         StagePlan([(A, "A", 0), (B, "B", 2)], [("Middle", 1)], frozenset())),
        ([A, B], [StageSpec("A", A)], set(), StagePlan([(A, "A", 0)], [], frozenset({B}))),
        ([A, B], [StageSpec("A", A)], {B}, StageRefusal("stage_in_use", "")),
        ([A], [StageSpec("x", C)], set(), StageRefusal("unknown_stage", "")),
        ([A], [StageSpec("x", A), StageSpec("y", A)], set(), StageRefusal("duplicate_stage", "")),
        ([], [StageSpec("Lead"), StageSpec(" lead ")], set(), StageRefusal("duplicate_stage", "")),
        ([A], [], set(), StageRefusal("invalid_stages", "")),
        ([], [StageSpec(f"s{n}") for n in range(51)], set(), StageRefusal("invalid_stages", "")),
    ],
)  # fmt: skip
def test_stage_edits(
    existing: list[UUID],
    requested: list[StageSpec],
    in_use: set[UUID],
    result: StagePlan | StageRefusal,
) -> None:
    planned = plan_stages(existing, requested, frozenset(in_use))
    if isinstance(result, StageRefusal):
        assert isinstance(planned, StageRefusal)
        assert planned.code == result.code
    else:
        assert planned == result


OPEN_IN_A = Opportunity(A, "Deal", Decimal("100.00"), OpportunityStatus.OPEN, {"src": "ads"})


@pytest.mark.parametrize(
    ("current", "update", "outcome", "result", "stage_changed"),
    [
        (None, OpportunityUpdate(A), Outcome.CREATED,
         Opportunity(A, "Ann Lee"), True),
        (None, OpportunityUpdate(B, "Big", Decimal("5"), OpportunityStatus.WON, {"k": 1}),
         Outcome.CREATED, Opportunity(B, "Big", Decimal("5"), OpportunityStatus.WON, {"k": 1}),
         True),
        (OPEN_IN_A, OpportunityUpdate(A), Outcome.UNCHANGED, OPEN_IN_A, False),
        (OPEN_IN_A, OpportunityUpdate(A, custom_fields={"src": "ads"}), Outcome.UNCHANGED,
         OPEN_IN_A, False),
        (OPEN_IN_A, OpportunityUpdate(B), Outcome.UPDATED,
         Opportunity(B, "Deal", Decimal("100.00"), OpportunityStatus.OPEN, {"src": "ads"}), True),
        (OPEN_IN_A, OpportunityUpdate(A, status=OpportunityStatus.LOST, custom_fields={"n": 2}),
         Outcome.UPDATED,
         Opportunity(A, "Deal", Decimal("100.00"), OpportunityStatus.LOST,
                     {"src": "ads", "n": 2}), False),
        (OPEN_IN_A, OpportunityUpdate(A, name="Renamed", value=Decimal("7")), Outcome.UPDATED,
         Opportunity(A, "Renamed", Decimal("7"), OpportunityStatus.OPEN, {"src": "ads"}), False),
    ],
)  # fmt: skip
def test_an_upsert_creates_moves_or_leaves_alone(
    current: Opportunity | None,
    update: OpportunityUpdate,
    outcome: Outcome,
    result: Opportunity,
    stage_changed: bool,
) -> None:
    decided = upsert(current, update, "Ann Lee")
    assert (decided.outcome, decided.result, decided.stage_changed) == (
        outcome,
        result,
        stage_changed,
    )


@pytest.mark.parametrize(
    ("parts", "name"),
    [
        (("Ann", "Lee", "annlee", "+491"), "Ann Lee"),
        ((None, "Lee", None, None), "Lee"),
        ((None, None, "annlee", "+491"), "@annlee"),
        ((None, None, None, "+4915123456789"), "+4915123456789"),
        ((None, None, None, None), "Contact"),
    ],
)
def test_a_new_opportunity_is_named_after_its_contact(
    parts: tuple[str | None, str | None, str | None, str | None], name: str
) -> None:
    assert display_name(*parts) == name


OFF, STOP, PAUSE = CompanyOnReply.OFF, CompanyOnReply.STOP, CompanyOnReply.PAUSE


@pytest.mark.parametrize(
    ("mode", "status", "taken_over", "becomes"),
    [
        (OFF, S.PENDING, False, None),
        (OFF, S.WAITING, False, None),
        (STOP, S.PENDING, False, S.CANCELLED),
        (STOP, S.RUNNING, False, S.CANCELLED),
        (STOP, S.WAITING, False, S.CANCELLED),
        (STOP, S.PAUSED, False, S.CANCELLED),
        (STOP, S.COMPLETED, False, None),
        (STOP, S.FAILED, False, None),
        (STOP, S.CANCELLED, False, None),
        (PAUSE, S.PENDING, False, S.PAUSED),
        (PAUSE, S.RUNNING, False, S.PAUSED),
        (PAUSE, S.WAITING, False, S.PAUSED),
        (PAUSE, S.PAUSED, False, None),
        (PAUSE, S.COMPLETED, False, None),
        (PAUSE, S.CANCELLED, False, None),
        (STOP, S.WAITING, True, None),
        (PAUSE, S.WAITING, True, None),
    ],
)
def test_a_company_reply_stops_or_pauses_the_colleagues_still_going(
    mode: CompanyOnReply, status: S, taken_over: bool, becomes: S | None
) -> None:
    assert on_company_reply(mode, status, taken_over=taken_over) == becomes
