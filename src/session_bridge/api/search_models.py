"""Request and response shapes of the Galileo-style session search (seed 003)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from session_bridge.api.params import Timestamp
from session_bridge.store.search import MAX_CONDITIONS, MAX_DEPTH

TRUNCATED_LENGTH = 1000

TextOperator = Literal["eq", "ne", "contains", "one_of", "not_in"]
Comparison = Literal["eq", "ne", "gt", "gte", "lt", "lte"]


class IdFilter(BaseModel):
    type: Literal["id"]
    column_id: str
    operator: TextOperator = "eq"
    value: str | list[str]


class DateFilter(BaseModel):
    type: Literal["date"]
    column_id: str
    operator: Comparison
    value: Timestamp


class NumberFilter(BaseModel):
    type: Literal["number"]
    column_id: str
    operator: Comparison | Literal["between"]
    value: float | list[float] = Field(description="[low, high] for between")


class BooleanFilter(BaseModel):
    type: Literal["boolean"]
    column_id: str
    operator: Literal["eq", "ne"] = "eq"
    value: bool


class CollectionFilter(BaseModel):
    type: Literal["collection"]
    column_id: str
    operator: Literal["contains", "eq", "one_of", "not_in"]
    value: str | list[str]
    case_sensitive: bool = True


class TextFilter(BaseModel):
    type: Literal["text"]
    column_id: str
    operator: TextOperator
    value: str | list[str]
    case_sensitive: bool = True


AnyFilter = Annotated[
    IdFilter | DateFilter | NumberFilter | BooleanFilter | CollectionFilter | TextFilter,
    Field(discriminator="type"),
]


class _TreeNode(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FilterLeaf(_TreeNode):
    filter: AnyFilter


class AndNode(_TreeNode):
    and_: list[FilterNode] = Field(alias="and")


class OrNode(_TreeNode):
    or_: list[FilterNode] = Field(alias="or")


class NotNode(_TreeNode):
    not_: FilterNode = Field(alias="not")


FilterNode = FilterLeaf | AndNode | OrNode | NotNode


def bounded_tree(tree: Any) -> Any:
    """`tree` as sent, once it is known to be within `MAX_DEPTH` levels and
    `MAX_CONDITIONS` filters: walked before the models are built, so that a huge
    tree is refused at once rather than parsed."""
    stack = [(tree, 0)]
    filters = 0
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict):
            continue
        children = [node["not"]] if "not" in node else []
        for key in ("and", "or"):
            if isinstance(node.get(key), list):
                children += node[key]
        if children and depth >= MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} levels deep (at most {MAX_DEPTH})")
        filters += "filter" in node
        if filters > MAX_CONDITIONS:
            raise ValueError(f"more than {MAX_CONDITIONS} filters (at most {MAX_CONDITIONS})")
        stack.extend((child, depth + 1) for child in children)
    return tree


class SortClause(BaseModel):
    column_id: str = "created_at"
    ascending: bool = True
    sort_type: Literal["column"] = "column"


class SessionSearchRequest(BaseModel):
    starting_token: int = Field(default=0, ge=0, le=10_000_000, description="Offset")
    limit: int = Field(default=100, ge=1, le=1000)
    previous_last_row_id: str | None = Field(
        default=None, description="last_row_id of the previous page: continue after that row"
    )
    log_stream_id: str | None = Field(default=None, description="Accepted, not used")
    experiment_id: str | None = Field(default=None, description="Accepted, not used")
    metrics_testing_id: str | None = Field(default=None, description="Accepted, not used")
    filters: list[AnyFilter] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description=f"All must hold (at most {MAX_CONDITIONS}, with filter_tree's)",
    )
    filter_tree: FilterNode | None = Field(
        default=None,
        description=f"At most {MAX_DEPTH} levels of and/or/not and {MAX_CONDITIONS} filters",
    )
    sort: SortClause | None = Field(default=None, description="Default: created_at descending")
    truncate_fields: bool = Field(
        default=False, description=f"Cut input/output at {TRUNCATED_LENGTH}"
    )
    include_counts: bool = Field(default=False, description="Fill num_traces")

    _bounded_tree = field_validator("filter_tree", mode="before")(bounded_tree)


class SessionRecordMetrics(BaseModel):
    duration_ns: int
    cost: float | None
    num_input_tokens: int
    num_output_tokens: int
    num_total_tokens: int


class ExtendedSessionRecord(BaseModel):
    type: Literal["session"] = "session"
    id: str
    session_id: str
    project_id: str
    run_id: str = Field(description="The project id (the bridge has no log streams)")
    name: str = Field(description="Name of the first trace")
    input: str = Field(description="Input of the first trace")
    output: str = Field(description="Output of the last trace")
    created_at: str
    updated_at: str
    tags: list[str]
    user_metadata: dict[str, str]
    status_code: int = Field(description="500 when a span failed, else 200")
    metrics: SessionRecordMetrics
    has_children: bool
    num_traces: int | None = Field(default=None, description="With include_counts")
    is_complete: bool = Field(description="The session has ended (no span for a while)")


class SessionSearchResponse(BaseModel):
    num_records: int = Field(description="Sessions matching the filters, all pages")
    starting_token: int
    limit: int
    paginated: bool
    next_starting_token: int | None
    last_row_id: str | None
    records: list[ExtendedSessionRecord]


for _model in (FilterLeaf, AndNode, OrNode, NotNode, SessionSearchRequest):
    _model.model_rebuild()
