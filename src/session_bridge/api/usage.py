"""What the sessions page needs besides single sessions: the projects a key may read
(`GET /api/v1/projects`) and a project's usage over time
(`GET /api/projects/{projectId}/usage`: sessions, tokens and cost per time bucket, by
model, by environment and by user). Bearer auth, like the other page-facing APIs.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from session_bridge.api.agent_models import CamelModel
from session_bridge.api.auth import ApiAuth, Scheme
from session_bridge.api.errors import bad_parameter, error_responses
from session_bridge.api.params import CHECKED_PARAMETERS, From, To, since_ns, until_ns
from session_bridge.rollup.rollup import NANO_USD, stamped_value
from session_bridge.store.base import GenerationQuery, SessionReader, SessionRow
from session_bridge.store.search import AllOf, Condition, Node, Op, SessionSearch, Sort
from session_bridge.timefmt import iso_from_ns

MAX_SESSIONS = 50_000  # read for one answer at most; `truncated` says when there were more
MAX_CALLS = 200_000
MAX_USERS = 1000
_PAGE = 1000
_NICE_BUCKETS_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
_TARGET_BUCKETS = 60
NO_ENVIRONMENT = "(none)"
NO_MODEL = "(unknown)"


class Projects(CamelModel):
    projects: list[str] = Field(description="Projects this key may read")
    open: bool = Field(description="No API keys are configured: every API is open")


class Totals(CamelModel):
    sessions: int
    traces: int
    input_tokens: int
    output_tokens: int
    cost_usd: float = Field(description="Sum of the priced LLM calls")
    unpriced_calls: int
    error_sessions: int = Field(description="Sessions with at least one span in error")
    users: int = Field(description="Distinct user ids")


class Bucket(CamelModel):
    start: str
    sessions: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    error_sessions: int


class ModelUsage(CamelModel):
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cost_series: list[float] = Field(description="Cost per bucket, aligned with `buckets`")
    token_series: list[int] = Field(description="Tokens per bucket, aligned with `buckets`")


class EnvironmentUsage(CamelModel):
    environment: str
    sessions: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    session_series: list[int] = Field(description="Sessions per bucket, aligned with `buckets`")


class UserUsage(CamelModel):
    user_id: str
    sessions: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    error_sessions: int
    first_seen: str
    last_seen: str


class Usage(CamelModel):
    start: str | None = Field(description="The first bucket's start (null: no sessions)")
    end: str | None
    bucket_seconds: int
    truncated: bool = Field(description="Too many sessions or calls: the oldest are left out")
    totals: Totals
    buckets: list[Bucket]
    by_model: list[ModelUsage] = Field(description="LLM calls that started in the range")
    by_environment: list[EnvironmentUsage]
    by_user: list[UserUsage] = Field(description=f"The {MAX_USERS} users with most sessions")


def bucket_seconds(extent_ns: int) -> int:
    """The smallest round bucket that cuts `extent_ns` into at most about 60 buckets."""
    for size in _NICE_BUCKETS_S:
        if extent_ns // (size * 1_000_000_000) < _TARGET_BUCKETS:
            return size
    return _NICE_BUCKETS_S[-1]


@dataclass(slots=True)
class _UserTally:
    sessions: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nano: int = 0
    errors: int = 0
    first_ns: int = 0
    last_ns: int = 0


def usage_router(store: SessionReader, auth: ApiAuth, inactivity_timeout_s: float) -> APIRouter:
    timeout_ns = int(inactivity_timeout_s * 1e9)
    router = APIRouter(
        dependencies=[*auth.documented(Scheme.BEARER), CHECKED_PARAMETERS],
        responses=error_responses(400, 401),
    )
    KeyProject = Annotated[str, Depends(auth.key_project(Scheme.BEARER))]
    PathProject = Annotated[str, Depends(auth.path_project("projectId", Scheme.BEARER))]

    @router.get("/api/v1/projects", response_model=Projects, tags=["sessions"])
    def projects(project_id: KeyProject) -> Projects:
        """The projects the key may read (open: the project spans are filed under)."""
        return Projects(projects=[project_id], open=auth.keys.is_open)

    def sessions_in(search: SessionSearch) -> Iterator[SessionRow]:
        while True:
            rows = store.search_sessions(search)
            yield from rows
            if len(rows) < search.limit:
                return
            search.after_session_id = rows[-1].session_id

    @router.get(
        "/api/projects/{projectId}/usage",
        response_model=Usage,
        tags=["usage"],
        responses=error_responses(404),
    )
    def usage(
        project_id: PathProject,
        start: From = None,
        end: To = None,
        user_id: Annotated[
            str | None,
            Query(alias="user.id", min_length=1, max_length=256, description="Only this user"),
        ] = None,
        bucket: Annotated[
            int | None,
            Query(
                ge=60,
                le=366 * 86400,
                description="Bucket width in seconds (default: a round width giving about"
                " 60 buckets over the sessions found)",
            ),
        ] = None,
    ) -> Usage:
        """Sessions (by their start), tokens and cost per time bucket, by model, by
        environment and by user."""
        lo, hi = since_ns(start), until_ns(end)
        if lo is not None and hi is not None and lo > hi:
            raise bad_parameter("from", "after 'to'")
        where: list[Node] = []
        if lo is not None:
            where.append(Condition("created_at", Op.GTE, lo))
        if hi is not None:
            where.append(Condition("created_at", Op.LTE, hi))
        if user_id is not None:
            where.append(Condition("user_id", Op.EQ, user_id))
        search = SessionSearch(
            project_id,
            active_since_ns=time.time_ns() - timeout_ns,
            where=AllOf(tuple(where)),
            sort=Sort("created_at", ascending=False),  # newest first: a cut drops the oldest
            limit=_PAGE,
        )
        rows: list[SessionRow] = []
        truncated = False
        for row in sessions_in(search):
            if len(rows) == MAX_SESSIONS:
                truncated = True
                break
            rows.append(row)
        rows.reverse()
        starts = [r.rollup.start_ns or 0 for r in rows]
        first = lo if lo is not None else (starts[0] if starts else 0)
        last = hi if hi is not None else (max(r.rollup.end_ns or 0 for r in rows) if rows else 0)
        width = bucket or bucket_seconds(max(last - first, 0))
        width_ns = width * 1_000_000_000
        origin = first - first % width_ns
        count = (max(last, origin) - origin) // width_ns + 1 if rows or lo is not None else 0
        count = min(count, 10_000)  # a huge range with a small bucket: the first 10,000

        def slot(at_ns: int) -> int | None:
            index = (at_ns - origin) // width_ns
            return index if 0 <= index < count else None

        zero = [[0, 0, 0, 0, 0] for _ in range(count)]  # sessions, in, out, nano, errors
        envs: dict[str, list[int]] = {}
        env_series: dict[str, list[int]] = {}
        users: dict[str, _UserTally] = {}
        totals = [0, 0, 0, 0, 0, 0, 0]  # sessions, traces, in, out, nano, unpriced, errors
        for row in rows:
            r = row.rollup
            priced_nano = r.cost_nano_usd if r.request_count > r.unpriced_count else 0
            erred = 1 if r.error_count else 0
            at = r.start_ns or 0
            index = slot(at)
            if index is not None:
                b = zero[index]
                b[0] += 1
                b[1] += r.input_tokens
                b[2] += r.output_tokens
                b[3] += priced_nano
                b[4] += erred
            env = stamped_value(r.environment) or NO_ENVIRONMENT
            e = envs.setdefault(env, [0, 0, 0, 0])
            e[0] += 1
            e[1] += r.input_tokens
            e[2] += r.output_tokens
            e[3] += priced_nano
            if index is not None:
                env_series.setdefault(env, [0] * count)[index] += 1
            user = stamped_value(r.user_id)
            if user is not None:
                u = users.setdefault(user, _UserTally(first_ns=at, last_ns=at))
                u.sessions += 1
                u.input_tokens += r.input_tokens
                u.output_tokens += r.output_tokens
                u.cost_nano += priced_nano
                u.errors += erred
                u.first_ns = min(u.first_ns, at)
                u.last_ns = max(u.last_ns, r.end_ns or at)
            for i, v in enumerate(
                (1, r.trace_count, r.input_tokens, r.output_tokens, priced_nano, r.unpriced_count)
            ):
                totals[i] += v
            totals[6] += erred

        models, calls_truncated = _model_usage(
            store, project_id, lo, hi, {r.session_id for r in rows} if user_id else None, slot
        )
        model_rows = []
        for model, (tally, cost_series, token_series) in models.items():
            cost_list = [0.0] * count
            token_list = [0] * count
            for index, nano in cost_series.items():
                cost_list[index] = nano / NANO_USD
            for index, tokens in token_series.items():
                token_list[index] = tokens
            model_rows.append(
                ModelUsage(
                    model=model,
                    calls=tally[0],
                    input_tokens=tally[1],
                    output_tokens=tally[2],
                    cost_usd=tally[3] / NANO_USD,
                    cost_series=cost_list,
                    token_series=token_list,
                )
            )
        model_rows.sort(key=lambda m: (-m.cost_usd, -m.calls, m.model))
        top_users = sorted(users.items(), key=lambda kv: (-kv[1].sessions, kv[0]))[:MAX_USERS]
        return Usage(
            start=iso_from_ns(origin) if count else None,
            end=iso_from_ns(origin + count * width_ns) if count else None,
            bucket_seconds=width,
            truncated=truncated or calls_truncated,
            totals=Totals(
                sessions=totals[0],
                traces=totals[1],
                input_tokens=totals[2],
                output_tokens=totals[3],
                cost_usd=totals[4] / NANO_USD,
                unpriced_calls=totals[5],
                error_sessions=totals[6],
                users=len(users),
            ),
            buckets=[
                Bucket(
                    start=iso_from_ns(origin + i * width_ns),
                    sessions=b[0],
                    input_tokens=b[1],
                    output_tokens=b[2],
                    cost_usd=b[3] / NANO_USD,
                    error_sessions=b[4],
                )
                for i, b in enumerate(zero)
            ],
            by_model=model_rows,
            by_environment=sorted(
                (
                    EnvironmentUsage(
                        environment=env,
                        sessions=e[0],
                        input_tokens=e[1],
                        output_tokens=e[2],
                        cost_usd=e[3] / NANO_USD,
                        session_series=env_series.get(env, [0] * count),
                    )
                    for env, e in envs.items()
                ),
                key=lambda e: (-e.sessions, e.environment),
            ),
            by_user=[
                UserUsage(
                    user_id=user,
                    sessions=u.sessions,
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cost_usd=u.cost_nano / NANO_USD,
                    error_sessions=u.errors,
                    first_seen=iso_from_ns(u.first_ns),
                    last_seen=iso_from_ns(u.last_ns),
                )
                for user, u in top_users
            ],
        )

    return router


ModelTally = tuple[list[int], dict[int, int], dict[int, int]]  # [calls, in, out, nano], series


def _model_usage(
    store: SessionReader,
    project_id: str,
    lo: int | None,
    hi: int | None,
    sessions: set[str] | None,
    slot: Callable[[int], int | None],
) -> tuple[dict[str, ModelTally], bool]:
    """Per model: calls, tokens and cost of the LLM calls in the range (of `sessions`
    only, when given), and cost and tokens per bucket."""
    models: dict[str, ModelTally] = {}
    query = GenerationQuery(project_id, limit=_PAGE, start_from_ns=lo, start_until_ns=hi)
    seen = 0
    while True:
        page = store.list_generations(query)
        for call in page:
            seen += 1
            if seen > MAX_CALLS:
                return models, True
            if sessions is not None and call.session_id not in sessions:
                continue
            llm = call.llm
            model = (llm.model if llm else None) or NO_MODEL
            tally, cost_series, token_series = models.setdefault(model, ([0, 0, 0, 0], {}, {}))
            nano = round(call.cost_usd * NANO_USD) if call.cost_usd is not None else 0
            tokens_in = llm.input_tokens if llm else 0
            tokens_out = llm.output_tokens if llm else 0
            tally[0] += 1
            tally[1] += tokens_in
            tally[2] += tokens_out
            tally[3] += nano
            index = slot(call.start_ns)
            if index is not None:
                cost_series[index] = cost_series.get(index, 0) + nano
                token_series[index] = token_series.get(index, 0) + tokens_in + tokens_out
        if len(page) < query.limit:
            return models, False
        last = page[-1]
        query.before = (last.start_ns, last.trace_id, last.span_id)
