"""HTTP routes of the public log: the signed checkpoint and consistency proofs (no token needed),
and a transaction's inclusion proof (for whoever may read the transaction)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from timebank.http.context import Caller, Db
from timebank.http.query import validate_query
from timebank.http.responses import problems
from timebank.ledger import service as ledger
from timebank.log import service
from timebank.log.models import ConsistencyProof, InclusionProof

# A trillion leaves: far beyond any community's history, and exact in every JSON number parser.
MAX_TREE_SIZE = 10**12
TreeSize = Annotated[
    int | None,
    QueryParameter(ge=1, le=MAX_TREE_SIZE, description="a signed checkpoint's size (default: the latest checkpoint)"),
]
First = Annotated[int, QueryParameter(ge=0, le=MAX_TREE_SIZE, description="the older tree size")]
Second = Annotated[
    int, QueryParameter(ge=0, le=MAX_TREE_SIZE, description="the newer tree size, at most the latest signed")
]


@get(
    "/v1/log/checkpoint",
    media_type="text/plain; charset=utf-8",
    responses=problems("not_found", authenticated=False),
    opt={"public": True},
    summary="The latest signed checkpoint of the public log (C2SP tlog-checkpoint in a signed note)",
)
async def get_checkpoint(db: Db) -> Response[str]:
    note = await service.latest_checkpoint(db)
    return Response(note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})


@get(
    "/v1/log/consistency",
    responses=problems("invalid_request", "not_yet_logged", "invalid_tree_size", authenticated=False),
    opt={"public": True},
    guards=[validate_query],
    summary="A consistency proof between two sizes of the public log (RFC 6962)",
)
async def get_consistency(db: Db, request: Request[Any, Any, State], first: First, second: Second) -> ConsistencyProof:
    interval = request.app.state.settings.log_seal_interval_seconds
    return await service.consistency_proof(db, first, second, interval)


@get(
    "/v1/transactions/{transaction_id:uuid}/proof",
    responses=problems("invalid_request", "forbidden", "not_found", "not_yet_logged", "invalid_tree_size"),
    summary="A transaction's inclusion proof in the public log, with the signed checkpoint",
)
async def get_transaction_proof(
    transaction_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    tree_size: TreeSize = None,
) -> InclusionProof:
    await ledger.get_transaction(db, principal, transaction_id)  # 404 / 403 as for reading it
    interval = request.app.state.settings.log_seal_interval_seconds
    return await service.inclusion_proof(db, transaction_id, tree_size, interval)


public_router = Router(path="/", route_handlers=[get_checkpoint, get_consistency], tags=["log"])
router = Router(path="/", route_handlers=[get_transaction_proof], tags=["log"])
