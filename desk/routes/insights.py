"""The insights for the lender (desk/insights.py, docs/insights.md): the figures as JSON or
CSV for a period, and filing messages the bot did not understand for review. Supervisors only.
Plain ``def`` routes: reading the tracker store and grouping texts run in the thread pool."""

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, conlist, constr

from .. import insights
from ..deps import DbSession, Supervisor
from ..service import utc_now

router = APIRouter(prefix="/api/agent")

LabelText = constr(strict=True, min_length=1, max_length=insights.MAX_LABEL_CHARS)


class LabelRequest(BaseModel):
    intent: constr(strict=True, min_length=1, max_length=80)  # type: ignore[valid-type]
    texts: conlist(LabelText, min_items=1,  # type: ignore[valid-type]
                   max_items=insights.MAX_LABEL_TEXTS)


def _period(first: str | None, last: str | None) -> insights.Period:
    return insights.parse_period(first, last, utc_now().date())


@router.get("/insights")
def insights_json(_supervisor: Supervisor, session: DbSession,
                  first: str | None = Query(None, alias="from", max_length=10),
                  last: str | None = Query(None, alias="to", max_length=10)) -> dict[str, Any]:
    period = _period(first, last)
    # the intents a supervisor can file a message under (the page's "label as" choices)
    return {**insights.insights(session, period),
            "label_intents": sorted(insights.known_intents())}


@router.get("/insights.csv")
def insights_csv(_supervisor: Supervisor, session: DbSession,
                 first: str | None = Query(None, alias="from", max_length=10),
                 last: str | None = Query(None, alias="to", max_length=10)) -> Response:
    period = _period(first, last)
    body = insights.to_csv(insights.insights(session, period))
    name = f"relend-insights-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return Response("\ufeff" + body, media_type="text/csv; charset=utf-8",  # BOM: Excel + 中文
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


@router.post("/insights/label")
def insights_label(body: LabelRequest, supervisor: Supervisor) -> dict[str, Any]:
    """File the texts as reviewed examples of ``intent`` (never into the training data)."""
    return insights.label(list(body.texts), body.intent, supervisor.name, utc_now())
