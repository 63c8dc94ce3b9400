"""Activities of the paged preview and the paged rollback: thin wrappers over
recovery/pages.py."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.support import heartbeating
from recovery import pages
from recovery.scan import ScanProgress
from workflows import rollback_pages as rp


@activity.defn(name=rp.PREVIEW_PAGE)
async def preview_page(input: rp.PageInput) -> rp.PageResult:
    scan = ScanProgress()  # how far this page is, in each heartbeat
    async with heartbeating(details=scan.as_json):
        try:
            return await pages.preview_page(
                activity.client(), input, scan, activity.info().task_queue
            )
        except RPCError as error:
            if error.status == RPCStatusCode.INVALID_ARGUMENT:  # retrying cannot fix the query
                raise ApplicationError(
                    f"the server refuses the query: {error.message}",
                    type="QueryError",
                    non_retryable=True,
                ) from None
            raise


@activity.defn(name=rp.PREVIEW_STATUS)
async def preview_status(input: rp.StatusInput) -> rp.PreviewState:
    async with heartbeating():
        try:
            return await pages.wait_pages(
                activity.client(), input.preview_id, input.more_than, input.wait_s
            )
        except LookupError as error:
            raise ApplicationError(str(error), type="NoPreview", non_retryable=True) from None


@activity.defn(name=rp.RESET_PAGE)
async def reset_page(input: rp.ResetPageInput) -> rp.PageOutcome:
    async with heartbeating():
        try:
            return await pages.reset_page(activity.client(), input)
        except LookupError as error:
            raise ApplicationError(str(error), type="PageGone", non_retryable=True) from None


PAGE_ACTIVITIES = [preview_page, preview_status, reset_page]
