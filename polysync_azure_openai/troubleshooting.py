"""What an operator should do about an error: the fixes the docs and the spec name.

Every piece of advice the plugin gives lives here: Azure error codes and statuses, Microsoft
Entra AADSTS codes, and an untrusted TLS certificate. Callers fill ``ErrorDetail.fix`` through
``advise`` and render it once with ``ErrorDetail.render``; the CLI shows ``fix`` on its own line.
"""

from __future__ import annotations

from typing import Final

import attrs

from .errors import ErrorDetail

#: A 429 asking for a wait this long (an hour) is a daily quota, not a per-minute one (spec §H).
DAILY_QUOTA_WAIT: Final = 3600.0

#: The only advice an untrusted certificate gets (spec second-release §A "untrusted").
PRIVATE_CA: Final = (
    "If the endpoint uses a private CA, point REQUESTS_CA_BUNDLE at a bundle that "
    "holds it (plus the public CAs the other platforms need)."
)


def token_advice(code: str | None, text: str) -> str:
    """Advice for a failed Microsoft Entra token request, from its AADSTS code or text."""
    if code == "AADSTS7000215":
        return "set 'Client Secret' to the secret's Value (not its Secret ID), or create a new secret."
    if code in ("AADSTS700016", "AADSTS90002") or "Unable to get authority configuration" in text:
        return "check 'Tenant Id' and 'Client Id' (and 'Azure Cloud' for sovereign clouds)."
    if code in ("AADSTS70011", "AADSTS500011"):
        return "the token scope does not exist in this tenant's cloud; set 'Azure Cloud' to the resource's cloud."
    if code in ("AADSTS700027", "AADSTS700024"):
        return "upload this certificate to the app registration (Certificates & secrets) or use the one registered there."
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            "the authority's TLS certificate is not trusted; for a private CA point "
            "REQUESTS_CA_BUNDLE at a bundle holding it and the public CAs."
        )
    if code == "NonJsonTokenAnswer":
        return (
            "check 'Authority Host' (or 'Azure Cloud') and any proxy between the workers and "
            "Microsoft Entra ID: the token endpoint must answer itself, not redirect."
        )
    if code == "AADSTS7000222":
        return "the client secret has expired; create a new one and update 'Client Secret'."
    return ""


def advise(detail: ErrorDetail, *, operation: str, deployment: str | None = None, api_key: bool = False) -> ErrorDetail:
    """``detail`` with its ``fix`` filled in, unless the place that raised it already knew better."""
    if detail.fix:
        return detail
    return attrs.evolve(detail, fix=advice(detail, operation=operation, deployment=deployment, api_key=api_key))


def advice(detail: ErrorDetail, *, operation: str, deployment: str | None = None, api_key: bool = False) -> str:
    """One sentence of advice for ``detail``, or "" when there is nothing specific to say.

    ``operation`` is "chat", "embeddings", "batch" or "discovery".
    """
    code = (detail.code or "").split("/")[0]
    status = detail.status
    where = f"'{deployment}'" if deployment else "the deployment"
    if code == "DeploymentNotFound":
        return (
            f"deployment {where} does not exist on this resource (or was created minutes ago). "
            "If the job's 'Deployment Name' was overridden, correct it; otherwise re-run Import Jobs."
        )
    if code in ("InvalidInputModel", "OperationNotSupported"):
        if operation == "embeddings":
            return (
                f"deployment {where} is not an embedding model. Re-run Import Jobs, or pick a "
                "deployment whose model name contains 'embedding'."
            )
        return f"deployment {where} does not support this operation; pick a chat model deployment or re-run Import Jobs."
    if code == "content_filter":
        return (
            "the prompt was rejected by Azure OpenAI's content filter. Change the prompt, or "
            "ask the resource owner to review the deployment's content filtering policy."
        )
    if status == 401:
        if api_key:
            return "check 'API Key' (Keys and Endpoint in the Azure portal) and that it belongs to this resource's endpoint."
        if code == "PermissionDenied":
            return "grant the identity the 'Cognitive Services OpenAI User' role on the resource."
        return (
            "the token was refused (missing, expired, wrong audience or tenant). Check that "
            "'Azure Cloud' matches the resource's cloud and 'Tenant Id' is the resource's tenant."
        )
    if status == 403:
        if operation == "discovery":
            return "grant the identity the 'Reader' role on the resource (or its resource group) for Import Jobs."
        return "grant the identity the 'Cognitive Services OpenAI User' role on the resource, and check its network rules."
    if status == 404 and code in ("404", ""):
        return "check 'OpenAI API Version', 'OpenAI Resource Name' and 'OpenAI Endpoint'."
    if code in ("ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"):
        return "check 'Subscription Id', 'Resource Group Name' and 'OpenAI Resource Name'."
    if status == 429 or code == "QuotaWait":
        if detail.retry_after is not None and detail.retry_after >= DAILY_QUOTA_WAIT:
            return (
                "Azure asks for a wait of hours: a daily quota of the deployment (or of the subscription) "
                "is used up. Wait for it to reset, raise it (https://aka.ms/oai/quotaincrease), or move "
                "the work to another deployment or to the Batch job."
            )
        return (
            "the deployment's quota (requests and tokens per minute, shared by every caller) held "
            "through this run's retries and waiting. Raise the quota (tokens per minute), run fewer "
            "calls on the deployment at once, raise 'Request Timeout Seconds' (how long a run may "
            "wait for the quota) and 'Max Retries', or use the Batch job for bulk work."
        )
    if code == "ReadTimeout":
        return "raise 'Request Timeout Seconds', or use the Batch job for long work."
    return ""


def failure_message(
    detail: ErrorDetail, *, what: str, operation: str, deployment: str | None = None, api_key: bool = False
) -> str:
    """``what`` failed: the error's substance, then the fix."""
    return advise(detail, operation=operation, deployment=deployment, api_key=api_key).render(f"{what} failed")
