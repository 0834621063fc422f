"""Session search: a store-neutral filter tree, the whitelist of searchable columns,
and its compilation to parameterised SQL.

The query APIs build a tree of `Condition`s; every column id is looked up in
`SESSION_COLUMNS` (a fixed table of SQL expressions written here) and every value
is bound as a parameter, so neither a column id nor a value from a request can
reach the SQL text. What differs between databases (JSON access, substring
search, placeholders) is behind `SqlDialect`; `SQLITE` is the SQLite one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from session_bridge.rollup.rollup import COST_USD_SQL

# How large a search may be. Each bound keeps the compiled SQL within what SQLite and
# PostgreSQL accept (SQLite's parser stack and expression depth, 32,766 bound
# parameters; PostgreSQL's 65,535), with room: the query APIs refuse larger ones.
MAX_DEPTH = 16  # and / or / not levels above a filter
MAX_CONDITIONS = 256  # filters in one search, however grouped
MAX_LIST_VALUES = 500  # values of one list operator (one_of, not_in, a collection's eq)
MAX_VALUES = 5000  # values of all the filters of one search together


class ColumnKind(StrEnum):
    ID = "id"
    TEXT = "text"
    DATE = "date"  # Unix nanoseconds
    NUMBER = "number"
    BOOLEAN = "boolean"
    COLLECTION = "collection"  # a JSON array of strings


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"  # value: [low, high], inclusive
    CONTAINS = "contains"
    ONE_OF = "one_of"
    NOT_IN = "not_in"
    IS_NULL = "is_null"


@dataclass(frozen=True, slots=True)
class Condition:
    column: str
    op: Op
    value: Any = None  # str | int | float | bool, or a list of them
    case_sensitive: bool = True


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    item: Node


Node = Condition | AllOf | AnyOf | Negation


@dataclass(frozen=True, slots=True)
class Sort:
    column: str = "created_at"
    ascending: bool = False


@dataclass(slots=True)
class SessionSearch:
    """Sessions of one project matching `where`, in `sort` order (ties: session id)."""

    project_id: str
    active_since_ns: int  # a session whose last span ended at or after this is active
    where: Node | None = None
    sort: Sort = field(default_factory=Sort)
    limit: int = 100
    offset: int = 0
    after_session_id: str | None = None  # keyset: start after this session's row


class UnknownColumnError(ValueError):
    def __init__(self, column: str) -> None:
        super().__init__(f"unknown column {column!r}; valid: {', '.join(SESSION_COLUMNS)}")
        self.column = column


class UnknownRowError(LookupError):
    """`after_session_id` names no session of the project."""


@dataclass(frozen=True, slots=True)
class Fragment:
    sql: str
    params: tuple[Any, ...] = ()

    def __add__(self, other: Fragment) -> Fragment:
        return Fragment(self.sql + other.sql, self.params + other.params)


class SqlDialect(ABC):
    mark = "?"  # the placeholder of a bound parameter

    @abstractmethod
    def json_text(self, column: str, key: str) -> str:
        """`column` holds a JSON object: the text of its `key` (NULL if absent)."""

    @abstractmethod
    def array_elements(self, column: str) -> str:
        """A FROM item over the strings of a JSON-array column, one row each, as `e.value`."""

    @abstractmethod
    def array_length(self, column: str) -> str: ...

    @abstractmethod
    def contains(self, haystack: str, needle: str) -> str:
        """True when `needle` is a substring of `haystack`, case-sensitively (the
        haystack must come first in the SQL: parameters are bound in text order)."""


class SqliteDialect(SqlDialect):
    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    def array_elements(self, column: str) -> str:
        return f"json_each({column}) AS e"

    def array_length(self, column: str) -> str:
        return f"json_array_length({column})"

    def contains(self, haystack: str, needle: str) -> str:
        return f"instr({haystack}, {needle}) > 0"


SQLITE = SqliteDialect()

Expression = Callable[[SqlDialect, int], Fragment]  # (dialect, active_since_ns) -> SQL


def _plain(sql: str) -> Expression:
    return lambda dialect, active_since: Fragment(sql)


def _json_field(column: str, key: str) -> Expression:
    return lambda dialect, active_since: Fragment(dialect.json_text(column, key))


def _active(dialect: SqlDialect, active_since: int) -> Fragment:
    return Fragment(f"(end_ns >= {dialect.mark})", (active_since,))


def _state(dialect: SqlDialect, active_since: int) -> Fragment:
    return Fragment(
        f"CASE WHEN end_ns >= {dialect.mark} THEN 'active' ELSE 'ended' END", (active_since,)
    )


@dataclass(frozen=True, slots=True)
class SearchColumn:
    kind: ColumnKind
    sql: Expression
    description: str

    @property
    def sortable(self) -> bool:
        return self.kind is not ColumnKind.COLLECTION


# The whitelist: column id -> kind and SQL expression over the `sessions` table.
SESSION_COLUMNS: dict[str, SearchColumn] = {
    "id": SearchColumn(ColumnKind.ID, _plain("session_id"), "Session id"),
    "user_id": SearchColumn(ColumnKind.TEXT, _plain("user_id"), "User id"),
    "environment": SearchColumn(ColumnKind.TEXT, _plain("environment"), "Deployment environment"),
    "created_at": SearchColumn(ColumnKind.DATE, _plain("start_ns"), "Start of the first span"),
    "updated_at": SearchColumn(ColumnKind.DATE, _plain("end_ns"), "End of the last span"),
    "duration_ns": SearchColumn(
        ColumnKind.NUMBER, _plain("(end_ns - start_ns)"), "Wall-clock duration, ns"
    ),
    "trace_count": SearchColumn(ColumnKind.NUMBER, _plain("trace_count"), "Traces (turns)"),
    "span_count": SearchColumn(ColumnKind.NUMBER, _plain("span_count"), "Spans"),
    "error_count": SearchColumn(ColumnKind.NUMBER, _plain("error_count"), "Spans in error"),
    "request_count": SearchColumn(ColumnKind.NUMBER, _plain("request_count"), "LLM calls"),
    "total_input_tokens": SearchColumn(
        ColumnKind.NUMBER, _plain("input_tokens"), "Input tokens of all LLM calls"
    ),
    "total_output_tokens": SearchColumn(
        ColumnKind.NUMBER, _plain("output_tokens"), "Output tokens of all LLM calls"
    ),
    "estimated_cost_usd": SearchColumn(
        ColumnKind.NUMBER, _plain(COST_USD_SQL), "Cost of the priced LLM calls (null: none priced)"
    ),
    "models_used": SearchColumn(ColumnKind.COLLECTION, _plain("models"), "Models called"),
    "providers_used": SearchColumn(ColumnKind.COLLECTION, _plain("providers"), "LLM providers"),
    "services": SearchColumn(ColumnKind.COLLECTION, _plain("services"), "service.name values"),
    "country_code": SearchColumn(
        ColumnKind.TEXT, _json_field("geo", "country_code"), "Client country (ISO code)"
    ),
    "device_type": SearchColumn(
        ColumnKind.TEXT, _json_field("client", "device_type"), "Client device type"
    ),
    "state": SearchColumn(ColumnKind.TEXT, _state, "active or ended"),
    "is_active": SearchColumn(ColumnKind.BOOLEAN, _active, "state is active"),
    "has_errors": SearchColumn(ColumnKind.BOOLEAN, _plain("(error_count > 0)"), "error_count > 0"),
}


def column(column_id: str) -> SearchColumn:
    found = SESSION_COLUMNS.get(column_id)
    if found is None:
        raise UnknownColumnError(column_id)
    return found


_SYMBOLS = {Op.EQ: "=", Op.NE: "<>", Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}


class _Compiler:
    def __init__(self, dialect: SqlDialect, active_since_ns: int) -> None:
        self.d = dialect
        self.active_since = active_since_ns

    def marks(self, count: int) -> str:
        return ", ".join([self.d.mark] * count)

    def node(self, node: Node) -> Fragment:
        if isinstance(node, Condition):
            return self.condition(node)
        if isinstance(node, Negation):
            inner = self.node(node.item)
            return Fragment(f"NOT ({inner.sql})", inner.params)
        parts = [self.node(item) for item in node.items]
        if not parts:  # an empty AND is true, an empty OR false
            return Fragment("1 = 1" if isinstance(node, AllOf) else "1 = 0")
        joiner = " AND " if isinstance(node, AllOf) else " OR "
        return Fragment(
            "(" + joiner.join(p.sql for p in parts) + ")",
            tuple(param for p in parts for param in p.params),
        )

    def condition(self, cond: Condition) -> Fragment:
        col = column(cond.column)
        expr = col.sql(self.d, self.active_since)
        if cond.op is Op.IS_NULL:
            return Fragment(f"({expr.sql}) IS NULL", expr.params)
        if col.kind is ColumnKind.COLLECTION:
            test = self.collection(expr.sql, cond)
            unknown = "FALSE"
        else:
            test, unknown = self.scalar(expr, cond, col.kind)
        # a comparison with NULL is never unknown, so that NOT is an exact complement
        return Fragment(f"COALESCE(({test.sql}), {unknown})", test.params)

    def scalar(self, expr: Fragment, cond: Condition, kind: ColumnKind) -> tuple[Fragment, str]:
        """The test of a non-collection condition, and its value when `expr` is NULL."""
        fold = not cond.case_sensitive and kind in (ColumnKind.TEXT, ColumnKind.ID)
        m = self.d.mark
        lhs = f"lower({expr.sql})" if fold else expr.sql
        rhs = f"lower({m})" if fold else m
        values = tuple(cond.value) if isinstance(cond.value, list | tuple) else (cond.value,)
        op = cond.op
        if op is Op.CONTAINS:
            sql = self.d.contains(lhs, rhs)
        elif op in (Op.ONE_OF, Op.NOT_IN):
            negate = "NOT " if op is Op.NOT_IN else ""
            sql = f"{lhs} {negate}IN ({', '.join([rhs] * len(values))})"
        elif op is Op.BETWEEN:
            sql = f"{lhs} BETWEEN {m} AND {m}"
        else:
            sql = f"{lhs} {_SYMBOLS[op]} {rhs}"
        unknown = "TRUE" if op in (Op.NE, Op.NOT_IN) else "FALSE"
        return Fragment(sql, expr.params + values), unknown

    def collection(self, array: str, cond: Condition) -> Fragment:
        values = [cond.value] if isinstance(cond.value, str) else list(cond.value)
        if not cond.case_sensitive:
            values = list(dict.fromkeys(v.lower() for v in values))

        def has_any(members: Sequence[str]) -> Fragment:
            element = "e.value" if cond.case_sensitive else "lower(e.value)"
            return Fragment(
                f"EXISTS (SELECT 1 FROM {self.d.array_elements(array)}"
                f" WHERE {element} IN ({self.marks(len(members))}))",
                tuple(members),
            )

        if cond.op in (Op.CONTAINS, Op.ONE_OF):
            return has_any(values)
        if cond.op is Op.NOT_IN:
            inner = has_any(values)
            return Fragment(f"NOT {inner.sql}", inner.params)
        if cond.op is Op.EQ:  # the same members, in any order
            # as many elements as values, and each value among them: one subquery,
            # whatever the number of values (one per value nests too deep in SQLite)
            distinct = list(dict.fromkeys(values))
            m = self.d.mark
            element = "e.value" if cond.case_sensitive else "lower(e.value)"
            return Fragment(
                f"{self.d.array_length(array)} = {m} AND (SELECT COUNT(DISTINCT {element})"
                f" FROM {self.d.array_elements(array)}"
                f" WHERE {element} IN ({self.marks(len(distinct))})) = {m}",
                (len(distinct), *distinct, len(distinct)),
            )
        raise ValueError(f"operator {cond.op} does not apply to collections")

    def order(self, sort: Sort) -> Fragment:
        expr = column(sort.column).sql(self.d, self.active_since)
        direction = "ASC" if sort.ascending else "DESC"
        # NULLs last in both directions, whatever the database's default
        return Fragment(
            f"({expr.sql}) IS NULL, {expr.sql} {direction}, session_id {direction}",
            expr.params * 2,
        )

    def after(self, sort: Sort, anchor_value: Any, anchor_id: str) -> Fragment:
        """Rows after (anchor_value, anchor_id) in `order(sort)`."""
        expr = column(sort.column).sql(self.d, self.active_since)
        m = self.d.mark
        cmp = ">" if sort.ascending else "<"
        if anchor_value is None:
            return Fragment(
                f"({expr.sql}) IS NULL AND session_id {cmp} {m}", (*expr.params, anchor_id)
            )
        return Fragment(
            f"(({expr.sql}) IS NULL OR {expr.sql} {cmp} {m}"
            f" OR ({expr.sql} = {m} AND session_id {cmp} {m}))",
            (*expr.params, *expr.params, anchor_value, *expr.params, anchor_value, anchor_id),
        )


def _where(search: SessionSearch, compiler: _Compiler) -> Fragment:
    where = Fragment(f"project_id = {compiler.d.mark}", (search.project_id,))
    if search.where is not None:
        where += Fragment(" AND ") + compiler.node(search.where)
    return where


def count_sql(search: SessionSearch, dialect: SqlDialect) -> Fragment:
    """SELECT the number of sessions matching `search` (sort and paging ignored)."""
    compiler = _Compiler(dialect, search.active_since_ns)
    return Fragment("SELECT COUNT(*) FROM sessions WHERE ") + _where(search, compiler)


def anchor_sql(search: SessionSearch, dialect: SqlDialect) -> Fragment:
    """SELECT the sort value of the `after_session_id` row (no row: unknown id)."""
    expr = column(search.sort.column).sql(dialect, search.active_since_ns)
    m = dialect.mark
    return Fragment(
        f"SELECT {expr.sql} FROM sessions WHERE project_id = {m} AND session_id = {m}",
        (*expr.params, search.project_id, search.after_session_id),
    )


def select_sql(
    search: SessionSearch, dialect: SqlDialect, select: str, anchor_value: Any = None
) -> Fragment:
    """SELECT `select` (a constant column list) of one page of `search`."""
    compiler = _Compiler(dialect, search.active_since_ns)
    where = _where(search, compiler)
    if search.after_session_id is not None:
        where += Fragment(" AND ") + compiler.after(
            search.sort, anchor_value, search.after_session_id
        )
    m = dialect.mark
    return (
        Fragment(f"SELECT {select} FROM sessions WHERE ")
        + where
        + Fragment(" ORDER BY ")
        + compiler.order(search.sort)
        + Fragment(f" LIMIT {m} OFFSET {m}", (search.limit, search.offset))
    )
