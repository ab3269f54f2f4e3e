"""What an operator should do about an Azure error: the fixes the docs and the spec name."""

from __future__ import annotations

from .errors import ErrorDetail


def advice(detail: ErrorDetail, *, operation: str, deployment: str | None = None, api_key: bool = False) -> str:
    """One sentence of advice for ``detail``, or "" when there is nothing specific to say.

    ``operation`` is "chat", "embeddings", "batch" or "discovery".
    """
    code = (detail.code or "").split("/")[0]
    status = detail.status
    where = f"'{deployment}'" if deployment else "the deployment"
    if code == "DeploymentNotFound":
        return (
            f"Fix: deployment {where} does not exist on this resource (or was created minutes ago). "
            "If the job's 'Deployment Name' was overridden, correct it; otherwise re-run Import Jobs."
        )
    if code in ("InvalidInputModel", "OperationNotSupported"):
        if operation == "embeddings":
            return (
                f"Fix: deployment {where} is not an embedding model. Re-run Import Jobs, or pick a "
                "deployment whose model name contains 'embedding'."
            )
        return f"Fix: deployment {where} does not support this operation; pick a chat model deployment or re-run Import Jobs."
    if code == "content_filter":
        return (
            "Fix: the prompt was rejected by Azure OpenAI's content filter. Change the prompt, or "
            "ask the resource owner to review the deployment's content filtering policy."
        )
    if status == 401:
        if api_key:
            return "Fix: check 'API Key' (Keys and Endpoint in the Azure portal) and that it belongs to this resource's endpoint."
        if code == "PermissionDenied":
            return "Fix: grant the identity the 'Cognitive Services OpenAI User' role on the resource."
        return (
            "Fix: the token was refused (missing, expired, wrong audience or tenant). Check that "
            "'Azure Cloud' matches the resource's cloud and 'Tenant Id' is the resource's tenant."
        )
    if status == 403:
        if operation == "discovery":
            return "Fix: grant the identity the 'Reader' role on the resource (or its resource group) for Import Jobs."
        return "Fix: grant the identity the 'Cognitive Services OpenAI User' role on the resource, and check its network rules."
    if status == 404 and code in ("404", ""):
        return "Fix: check 'OpenAI API Version', 'OpenAI Resource Name' and 'OpenAI Endpoint'."
    if code in ("ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"):
        return "Fix: check 'Subscription Id', 'Resource Group Name' and 'OpenAI Resource Name'."
    if status == 429:
        return (
            "Fix: the deployment's rate limit was hit on every attempt; raise its quota (tokens per "
            "minute), spread the schedule, or use the Batch job for bulk work."
        )
    if code == "ReadTimeout":
        return "Fix: raise 'Request Timeout Seconds', or use the Batch job for long work."
    if code == "TLSError":
        return ""  # the message already says what to do
    return ""


def failure_message(
    detail: ErrorDetail, *, what: str, operation: str, deployment: str | None = None, api_key: bool = False
) -> str:
    """``what`` failed: the error's substance, then the fix."""
    text = f"{what} failed: {detail.describe()}."
    hint = advice(detail, operation=operation, deployment=deployment, api_key=api_key)
    return f"{text} {hint}" if hint else text
