"""Thin gRPC translation for ChallengesService: protobuf in, ledger/store, protobuf out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import grpc
from google.api import httpbody_pb2
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from tradesense.challenges.v1 import challenges_pb2 as pb
from tradesense.challenges.v1 import challenges_pb2_grpc
from tradesense.risk.v1 import risk_pb2, risk_pb2_grpc

from services.challenges import store
from services.challenges.domain import days, engine, plan_rules
from services.challenges.domain.rulepacks import RulePack
from services.challenges.domain.rules import RuleError
from services.challenges.event_streams import INTERVALS, MAX_POINTS, EventStreams
from services.challenges.ledger import Ledger
from services.challenges.wire import (
    breach_pb,
    challenge_pb,
    dashboard,
    event_pb,
    objective_pb,
    outbox_pb,
    position_pb,
    rule_pack_pb,
    trade_pb,
    ts,
)
from services.common import decimals, identity, pagination, sse, structs
from services.common.errors import already_exists, invalid_argument, not_found
from services.common.ids import parse_uuid
from services.common.partition_leases import PARTITIONS, partition_of
from services.common.quotas import RateQuota
from services.common.rpc import Context

MAX_NOTE, MAX_TAGS, MAX_TAG, MAX_KEY = 2000, 20, 50, 200
MAX_LISTED_IDS = 100  # challenge_ids in one list request


def _key_reused() -> Exception:
    """A retry's key names the first fill; another order under the same key is a client bug
    (as for create-challenge and register), never silently answered with that fill."""
    return already_exists("idempotency key already used for a different order", reason="IDEMPOTENCY_KEY_REUSED")


class ChallengesServicer(challenges_pb2_grpc.ChallengesServiceServicer):
    def __init__(
        self,
        db: AsyncEngine,
        ledger: Ledger,
        risk: risk_pb2_grpc.RiskServiceStub | None,
        heartbeat: float = sse.HEARTBEAT,
        order_quota: RateQuota | None = None,
        journal_quota: RateQuota | None = None,
    ) -> None:
        self.db = db
        self.order_quota = order_quota or RateQuota(0, 0, "", "")
        self.journal_quota = journal_quota or RateQuota(0, 0, "", "")
        self.ledger = ledger
        self.risk = risk
        self.heartbeat = heartbeat
        self.streams = EventStreams(db, lambda: ledger.new_events, lambda: ledger.market.specs)
        self._plan_names: dict[str, str] = {}  # plans are added, never renamed: reloaded on a miss
        self._worded: dict[tuple[Any, ...], list[pb.PlanSizeRules]] = {}

    async def _challenges(self, rows: list[Any]) -> list[pb.Challenge]:
        """Challenges as the API shows them: with the plan's name and, live, the dashboard's
        fields (wire.dashboard)."""
        if any(r["plan_id"] not in self._plan_names for r in rows):
            async with self.db.connect() as conn:
                self._plan_names = await store.plan_names(conn)
        now = datetime.now(UTC)
        return [
            dashboard(challenge_pb(r, self._plan_names.get(r["plan_id"], "")), r, self.ledger.states.rules(r), now)
            for r in rows
        ]

    def _trade(self, r: Any) -> pb.Trade:
        return trade_pb(r, self.ledger.market.specs.get(r["symbol"]))

    @staticmethod
    def _scope() -> uuid.UUID | None:
        """Whose resources the caller may see: their own, or everyone's for admins/services."""
        caller = identity.require()
        if caller.role in ("admin", "service"):
            return None
        return parse_uuid(caller.user_id, "user")

    # --- plans and packs -------------------------------------------------------------------------

    async def ListPlans(self, request: pb.ListPlansRequest, context: Context) -> pb.ListPlansResponse:
        page = pagination.parse(request.page_size, request.page_token)
        after = page.text("after")
        async with self.db.connect() as conn:
            rows = await store.list_plans(conn, after=after, limit=page.size + 1)
            rows, more = page.cut(rows)
            plans = [self._plan_pb(r, await self._rules_in_words(conn, r)) for r in rows]
        return pb.ListPlansResponse(
            plans=plans, next_page_token=pagination.token({"after": rows[-1]["id"]}) if more else ""
        )

    async def _rules_in_words(self, conn: Any, r: RowMapping) -> list[pb.PlanSizeRules]:
        """The plan's rules as its pack's rules describe themselves, per size (packs are
        immutable per version: worded once per process)."""
        key = (r["rule_pack"], r["rule_pack_version"], r["phase"], r["currency"], tuple(r["account_sizes"]))
        if key not in self._worded:
            pack = await store.get_pack(conn, r["rule_pack"], r["rule_pack_version"])
            sizes = [Decimal(str(a)) for a in r["account_sizes"]]
            worded = plan_rules.described(pack, r["phase"], r["currency"], sizes) if pack is not None else []
            self._worded[key] = [
                pb.PlanSizeRules(account_size=decimals.fmt(size), rules=texts) for size, texts in worded
            ]
        return self._worded[key]

    @staticmethod
    def _plan_pb(r: RowMapping, rules_by_size: list[pb.PlanSizeRules]) -> pb.Plan:
        return pb.Plan(
            id=r["id"],
            name=r["name"],
            rule_pack=r["rule_pack"],
            rule_pack_version=r["rule_pack_version"],
            phase=r["phase"],
            account_sizes=[decimals.fmt(a) for a in r["account_sizes"]],
            currency=r["currency"],
            description=r["description"],
            rules_by_size=rules_by_size,
        )

    async def ListRulePacks(self, request: pb.ListRulePacksRequest, context: Context) -> pb.ListRulePacksResponse:
        async with self.db.connect() as conn:
            rows = await store.list_packs(conn)
        return pb.ListRulePacksResponse(rule_packs=[rule_pack_pb(r) for r in rows])

    async def CreateRulePack(self, request: pb.CreateRulePackRequest, context: Context) -> pb.RulePack:
        identity.require_admin()
        try:
            pack = RulePack.from_dict(structs.plain(request.definition))
        except RuleError as exc:  # every problem, each at its field
            violations = {f"definition.{k}".rstrip("."): v[:200] for k, v in list(exc.violations.items())[:20]}
            raise invalid_argument(violations, "not a valid rule pack") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise invalid_argument({"definition": f"not a valid rule pack: {str(exc)[:200]}"}) from None
        async with self.db.begin() as conn:
            if not await store.insert_pack(conn, pack):
                raise already_exists(
                    f"rule pack {pack.id} v{pack.version} exists; publish a new version",
                    reason="RULE_PACK_VERSION_EXISTS",
                )
        return pb.RulePack(id=pack.id, version=pack.version, name=pack.name, definition=request.definition)

    async def CreatePlan(self, request: pb.CreatePlanRequest, context: Context) -> pb.Plan:
        identity.require_admin()
        p = request.plan
        violations = {}
        if not p.id or len(p.id) > 64:
            violations["plan.id"] = "is required (at most 64 characters)"
        sizes = []
        for i, raw in enumerate(p.account_sizes):
            sizes.append(decimals.parse(raw, f"plan.account_sizes[{i}]", positive=True))
        if not sizes:
            violations["plan.account_sizes"] = "at least one size"
        if violations:
            raise invalid_argument(violations)
        async with self.db.begin() as conn:
            pack = await store.get_pack(conn, p.rule_pack, p.rule_pack_version)
            if pack is None:
                raise not_found("rule pack", reason="RULE_PACK_NOT_FOUND")
            try:
                for size in sizes:
                    pack.rules_for(p.phase or 1, size)  # type: ignore[arg-type]
            except RuleError as exc:
                raise invalid_argument({"plan": str(exc)[:300]}) from None
            except ValueError as exc:
                raise invalid_argument({"plan.phase": str(exc)}) from None
            values = {
                "id": p.id,
                "name": p.name or p.id,
                "rule_pack": p.rule_pack,
                "rule_pack_version": p.rule_pack_version,
                "phase": p.phase or 1,
                "account_sizes": sizes,
                "currency": p.currency or "USD",
                "description": p.description,
            }
            if not await store.insert_plan(conn, values):
                raise already_exists(f"plan {p.id} exists", reason="PLAN_EXISTS")
            row = await store.get_plan(conn, p.id)
            assert row is not None
            return self._plan_pb(row, await self._rules_in_words(conn, row))

    # --- challenges ----------------------------------------------------------------------------------

    async def CreateChallenge(self, request: pb.CreateChallengeRequest, context: Context) -> pb.Challenge:
        caller = identity.require()
        violations = {}
        if not request.plan_id:
            violations["plan_id"] = "is required"
        if len(request.idempotency_key) > MAX_KEY:
            violations["idempotency_key"] = f"at most {MAX_KEY} characters"
        if violations:
            raise invalid_argument(violations)
        size = decimals.parse(request.account_size, "account_size", positive=True)
        assert size is not None
        row = await self.ledger.create(
            parse_uuid(caller.user_id, "user"), request.plan_id, size, request.idempotency_key or None
        )
        return (await self._challenges([row]))[0]

    async def StartChallenge(self, request: pb.StartChallengeRequest, context: Context) -> pb.Challenge:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        return (await self._challenges([await self.ledger.start(cid, self._scope())]))[0]

    async def CancelChallenge(self, request: pb.CancelChallengeRequest, context: Context) -> pb.Challenge:
        identity.require_admin()
        cid = parse_uuid(request.challenge_id, "challenge_id")
        await self.ledger.cancel(cid, request.reason[:200])
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, None)
        assert row is not None
        return (await self._challenges([row]))[0]

    async def GetChallenge(self, request: pb.GetChallengeRequest, context: Context) -> pb.ChallengeDetail:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, self._scope())
            if row is None:
                raise not_found("challenge")
            recent = await store.list_trades(
                conn,
                challenge_id=cid,
                user_id=None,
                symbol="",
                side="",
                start=None,
                end=None,
                descending=True,
                after=None,
                limit=10,
            )
            positions = await store.get_positions(conn, cid)
            last_event = await store.last_sequence_of(conn, cid)
        session = self.ledger.session_of(row, positions)
        if row["status"] in (engine.ACTIVE, engine.PAUSED):
            session.account.equity = session.equity()  # live, not as of the last write
        closed = row["winning_trades"] + row["losing_trades"]
        detail = pb.ChallengeDetail(
            challenge=(await self._challenges([row]))[0],
            recent_trades=[self._trade(t) for t in recent],
            total_trades=closed,
            fills=row["total_trades"],
            last_event_sequence=last_event,
            timezone=session.rules.timezone,
            reset_time=session.rules.reset_time.isoformat(),
            win_rate_ratio=round(row["winning_trades"] / closed, 4) if closed else 0.0,
            avg_trade_pnl=decimals.money(row["realized_pnl"] / closed) if closed else "0.00",
            objectives=[objective_pb(o) for o in engine.objectives(session.account, session.rules, datetime.now(UTC))],
        )
        detail.challenge.current_equity = decimals.money(session.account.equity)
        if row["status"] in (engine.ACTIVE, engine.PAUSED):  # the countdowns the console shows
            r = session.rules
            detail.next_reset_at.CopyFrom(detail.challenge.next_reset_at)  # as wire.dashboard set it
            limit = r.of("time_limit")
            deadline = limit.deadline(session.account, r) if limit is not None else None  # type: ignore[attr-defined]
            if deadline is not None:
                detail.deadline_at.FromDatetime(deadline.astimezone(UTC))
        await self._risk_score(detail, str(cid))
        return detail

    async def _risk_score(self, detail: pb.ChallengeDetail, cid: str) -> None:
        """The risk score if risk answers quickly; the detail never fails because risk is down."""
        if self.risk is None:
            return
        caller = identity.require()
        try:
            score = await self.risk.GetScore(
                risk_pb2.GetScoreRequest(challenge_id=cid),
                metadata=(("authorization", f"Bearer {caller.token}"),),
                timeout=0.3,
            )
            detail.risk_score = score.score
            detail.risk_score_available = True
        except (TimeoutError, grpc.aio.AioRpcError):
            detail.risk_score_available = False

    async def ListChallenges(self, request: pb.ListChallengesRequest, context: Context) -> pb.ListChallengesResponse:
        page = pagination.parse(request.page_size, request.page_token)
        before = pagination.time_id_cursor(page)
        status = pb.ChallengeStatus.Name(request.status) if request.status else None
        if len(request.challenge_ids) > MAX_LISTED_IDS:
            raise invalid_argument({"challenge_ids": f"at most {MAX_LISTED_IDS}"})
        ids = [parse_uuid(x, "challenge_ids") for x in request.challenge_ids] or None
        async with self.db.connect() as conn:
            rows = await store.list_challenges(
                conn, user_id=self._scope(), status=status, before=before, limit=page.size + 1, ids=ids
            )
        rows, more = page.cut(rows)
        token = pagination.time_id_token(rows, "created_at", more)
        return pb.ListChallengesResponse(challenges=await self._challenges(rows), next_page_token=token)

    # --- trading ---------------------------------------------------------------------------------------

    async def PlaceTrade(self, request: pb.PlaceTradeRequest, context: Context) -> pb.Trade:
        caller = identity.require()
        self.order_quota.take(caller.user_id)
        violations: dict[str, str] = {}
        cid = parse_uuid(request.challenge_id, "challenge_id") if request.challenge_id else None
        if cid is None:
            violations["challenge_id"] = "is required"
        if not request.symbol.strip():
            violations["symbol"] = "is required"
        if request.side not in (pb.BUY, pb.SELL):
            violations["side"] = "must be BUY or SELL"
        if not request.quantity:
            violations["quantity"] = "is required"
        if len(request.idempotency_key) > MAX_KEY:
            violations["idempotency_key"] = f"at most {MAX_KEY} characters"
        if len(request.note) > MAX_NOTE:
            violations["note"] = f"at most {MAX_NOTE} characters"
        if len(request.tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in request.tags):
            violations["tags"] = f"at most {MAX_TAGS} tags of {MAX_TAG} characters"
        if violations:
            raise invalid_argument(violations)
        quantity = decimals.parse(request.quantity, "quantity", positive=True)
        sl = decimals.parse(request.stop_loss, "stop_loss", positive=True, optional=True)
        tp = decimals.parse(request.take_profit, "take_profit", positive=True, optional=True)
        assert quantity is not None and cid is not None
        row = await self.ledger.place(
            cid,
            parse_uuid(caller.user_id, "user"),
            request.symbol.strip().upper(),
            pb.Side.Name(request.side),
            quantity,
            sl,
            tp,
            request.idempotency_key or None,
            request.note,
            list(request.tags),
        )
        if request.idempotency_key and (row["symbol"], row["side"], row["quantity"], row["note"]) != (
            request.symbol.strip().upper(),
            pb.Side.Name(request.side),
            quantity,
            request.note,
        ):
            raise _key_reused()
        return self._trade(row)

    async def ClosePosition(self, request: pb.ClosePositionRequest, context: Context) -> pb.Trade:
        caller = identity.require()
        cid = parse_uuid(request.challenge_id, "challenge_id")
        row = await self.ledger.close(
            cid,
            parse_uuid(caller.user_id, "user"),
            request.symbol.strip().upper(),
            request.idempotency_key or None,
        )
        if request.idempotency_key and row["symbol"] != request.symbol.strip().upper():
            raise _key_reused()
        return self._trade(row)

    async def UpdateTradeJournal(self, request: pb.UpdateTradeJournalRequest, context: Context) -> pb.Trade:
        self.journal_quota.take(identity.require().user_id)
        tid = parse_uuid(request.trade_id, "trade_id")
        if len(request.note) > MAX_NOTE:
            raise invalid_argument({"note": f"at most {MAX_NOTE} characters"})
        if len(request.tags) > MAX_TAGS or any(len(t) > MAX_TAG for t in request.tags):
            raise invalid_argument({"tags": f"at most {MAX_TAGS} tags of {MAX_TAG} characters"})
        paths = set(request.update_mask.paths)
        if paths - {"note", "tags"}:
            raise invalid_argument({"update_mask": "may name note and tags only"})
        note = request.note if ("note" in paths if paths else request.HasField("note")) else None
        tags = list(request.tags) if ("tags" in paths if paths else len(request.tags) > 0) else None
        async with self.db.begin() as conn:
            row = await store.get_trade(conn, tid, self._scope())
            if row is None:
                raise not_found("trade")
            if note is not None or tags is not None:
                row = await store.update_journal(conn, tid, note, tags)
        return self._trade(row)

    async def ListTrades(self, request: pb.ListTradesRequest, context: Context) -> pb.ListTradesResponse:
        scope = self._scope()
        page = pagination.parse(request.page_size, request.page_token)
        after = pagination.time_id_cursor(page)
        cid = parse_uuid(request.challenge_id, "challenge_id") if request.challenge_id else None
        start = request.start_time.ToDatetime(UTC) if request.HasField("start_time") else None
        end = request.end_time.ToDatetime(UTC) if request.HasField("end_time") else None
        if start and end and start >= end:
            raise invalid_argument({"end_time": "must be after start_time"})
        descending = request.order != 1  # newest first unless ASC
        async with self.db.connect() as conn:
            if cid is not None and await store.get_challenge(conn, cid, scope) is None:
                raise not_found("challenge")
            rows = await store.list_trades(
                conn,
                challenge_id=cid,
                user_id=scope,
                symbol=request.symbol.strip().upper(),
                side=pb.Side.Name(request.side) if request.side else "",
                start=start,
                end=end,
                descending=descending,
                after=after,
                limit=page.size + 1,
            )
        rows, more = page.cut(rows)
        token = pagination.time_id_token(rows, "executed_at", more)
        return pb.ListTradesResponse(trades=[self._trade(r) for r in rows], next_page_token=token)

    async def ListPositions(self, request: pb.ListPositionsRequest, context: Context) -> pb.ListPositionsResponse:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, self._scope())
            if row is None:
                raise not_found("challenge")
            rows = await store.get_positions(conn, cid)
            fees = await store.position_fees(conn, cid)
        session = self.ledger.session_of(row, rows)
        out = [position_pb(cid, r, session, fees.get(r["symbol"])) for r in rows if r["quantity"] != 0]
        page = pagination.parse(request.page_size, request.page_token)
        start = page.offset("i")
        chunk = out[start : start + page.size]
        more = start + page.size < len(out)
        return pb.ListPositionsResponse(
            positions=chunk, next_page_token=pagination.token({"i": start + page.size}) if more else ""
        )

    async def ListBreaches(self, request: pb.ListBreachesRequest, context: Context) -> pb.ListBreachesResponse:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        page = pagination.parse(request.page_size, request.page_token)
        offset = page.offset("n")
        async with self.db.connect() as conn:
            if await store.get_challenge(conn, cid, self._scope()) is None:
                raise not_found("challenge")
            rows = await store.list_breaches(conn, cid, offset, page.size + 1)
        rows, more = page.cut(rows)
        return pb.ListBreachesResponse(
            breaches=[breach_pb(r) for r in rows],
            next_page_token=pagination.token({"n": offset + page.size}) if more else "",
        )

    # --- events ------------------------------------------------------------------------------------------

    async def WatchEvents(self, request: pb.WatchEventsRequest, context: Context) -> AsyncIterator[pb.OutboxEvent]:
        async for events in self._outbox_runs(request, context):
            for e in events:
                yield e

    async def WatchEventBatches(
        self, request: pb.WatchEventsRequest, context: Context
    ) -> AsyncIterator[pb.OutboxEventBatch]:
        async for events in self._outbox_runs(request, context):
            yield pb.OutboxEventBatch(events=events)

    async def _outbox_runs(
        self, request: pb.WatchEventsRequest, context: Context
    ) -> AsyncIterator[list[pb.OutboxEvent]]:
        """The outbox from `after_sequence` on, of the wanted partitions, in runs of what is ready."""
        if request.after_sequence < 0:
            raise invalid_argument({"after_sequence": "must not be negative"})
        wanted = set(request.partitions)
        if any(not 0 <= p < PARTITIONS for p in wanted):
            raise invalid_argument({"partitions": f"partitions are 0 to {PARTITIONS - 1}"})
        await context.send_initial_metadata(())
        async for rows in self.streams.follow_batches(request.after_sequence):
            events = [outbox_pb(r) for r in rows if not wanted or partition_of(r["challenge_id"]) in wanted]
            if events:
                yield events

    async def StreamChallengeEvents(
        self, request: pb.StreamChallengeEventsRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        if request.after_sequence < 0:
            raise invalid_argument({"after_sequence": "must not be negative"})
        after = sse.resume_after(context, request.after_sequence)
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, self._scope())
        if row is None:
            raise not_found("challenge")
        await context.send_initial_metadata(())  # the stream is open even before its first event
        async for body in self.streams.challenge_sse(cid, after, row["status"], self.heartbeat):
            yield body

    async def GetEquityCurve(self, request: pb.GetEquityCurveRequest, context: Context) -> pb.EquityCurve:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        name = request.interval or "1m"
        interval = INTERVALS.get(name)
        if interval is None:
            raise invalid_argument({"interval": f"one of {', '.join(INTERVALS)}"})
        async with self.db.connect() as conn:
            row = await store.get_challenge(conn, cid, self._scope())
        if row is None:
            raise not_found("challenge")
        now = datetime.now(UTC)
        end = request.end_time.ToDatetime(UTC) if request.HasField("end_time") else now
        if request.HasField("start_time"):
            start = request.start_time.ToDatetime(UTC)
        else:  # the current trading day, in the pack's zone
            rules = self.ledger.states.rules(row)
            start = days.day_start(days.trading_day(now, rules.tz, rules.reset_time), rules.tz, rules.reset_time)
        if start >= end:
            raise invalid_argument({"end_time": "must be after start_time"})
        if (end - start) / interval > MAX_POINTS:
            raise invalid_argument({"interval": f"at most {MAX_POINTS} points: a longer interval or a shorter span"})
        points = await self.streams.equity_curve(cid, interval, start, end)
        return pb.EquityCurve(
            interval=name,
            points=[pb.EquityPoint(time=ts(t), equity=decimals.money(e)) for t, e in points],
        )

    async def ListChallengeEvents(
        self, request: pb.ListChallengeEventsRequest, context: Context
    ) -> pb.ListChallengeEventsResponse:
        cid = parse_uuid(request.challenge_id, "challenge_id")
        page = pagination.parse(request.page_size, request.page_token)
        after = max(request.after_sequence, int(page.text("after") or 0))
        async with self.db.connect() as conn:
            if await store.get_challenge(conn, cid, self._scope()) is None:
                raise not_found("challenge")
        rows = await self.streams.events_after(after, page.size + 1, cid, list(request.types))
        rows, more = page.cut(rows)
        return pb.ListChallengeEventsResponse(
            events=[event_pb(r, self.ledger.market.specs) for r in rows],
            next_page_token=pagination.token({"after": str(rows[-1]["sequence"])}) if more else "",
        )
