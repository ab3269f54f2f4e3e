"""What an operator should do about an error: the fixes the docs and the spec name.

Every piece of advice the plugin gives lives here: Azure error codes and statuses, Microsoft
Entra AADSTS codes, and an untrusted TLS certificate. Callers fill ``ErrorDetail.fix`` through
``advise`` and render it once with ``ErrorDetail.render``; the CLI shows ``fix`` on its own line.
"""

from __future__ import annotations

from typing import Final

import attrs

from .errors import ErrorDetail
from .identity import MANAGED_IDENTITY, WORKLOAD_IDENTITY, AuthConfig

#: A 429 asking for a wait this long (an hour) is a daily quota, not a per-minute one (spec §H).
DAILY_QUOTA_WAIT: Final = 3600.0

#: The only advice an untrusted certificate gets (spec second-release §A "untrusted").
PRIVATE_CA: Final = (
    "If the endpoint uses a private CA, point REQUESTS_CA_BUNDLE at a bundle that "
    "holds it (plus the public CAs the other platforms need)."
)


#: Advice when no managed identity endpoint answered (the worker is not on Azure, or has none).
NO_MANAGED_IDENTITY: Final = (
    "no managed identity endpoint answered: run the worker on Azure with a managed identity turned on "
    "(App Service, Functions and Container Apps set IDENTITY_ENDPOINT and IDENTITY_HEADER; VMs, scale sets "
    "and AKS nodes answer on IMDS, 169.254.169.254). Off Azure, use 'Workload Identity', 'Certificate' or "
    "'Service Principal'."
)
#: Entra's "no federated identity credential matches the token" codes (any of issuer, subject, audience).
_NO_FEDERATED_MATCH: Final = frozenset({"AADSTS70021", "AADSTS700211", "AADSTS700212", "AADSTS700213", "AADSTS7002138"})


def token_advice(code: str | None, text: str, auth: AuthConfig | None = None, status: int | None = None) -> str:
    """Advice for a failed Microsoft Entra token request, from its AADSTS code, text or status.

    ``auth`` tells the keyless methods apart, whose failures mean other things: a managed
    identity's come from the host's identity endpoint, a workload identity's from its token file.
    """
    if auth is not None and auth.method == MANAGED_IDENTITY:
        return _managed_identity_advice(text, auth.client_id)
    if auth is not None and auth.method == WORKLOAD_IDENTITY:
        advice = _workload_identity_advice(code)
        if advice:
            return advice
    if status is not None and (status in (408, 429) or status >= 500):
        return (
            "Microsoft Entra ID is throttling or unavailable for now; nothing is wrong with the "
            "platform's settings, and the next attempt asks again."
        )
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


def _managed_identity_advice(text: str, client_id: str | None) -> str:
    if "Unable to load the proper Managed Identity" in text or "No identity has been assigned" in text:
        if client_id:
            return (
                f"no user-assigned identity with client id {client_id} is attached to the worker's Azure resource: "
                "attach it (the resource's Identity page, User assigned) or correct 'Client Id'; leave 'Client Id' "
                "blank for the system-assigned identity."
            )
        return (
            "the worker's Azure resource has no system-assigned identity: turn it on (the resource's Identity page, "
            "System assigned), or set 'Client Id' to an attached user-assigned identity."
        )
    if ") 401," in text:
        return (
            "the identity endpoint refused IDENTITY_HEADER: restart the worker so that it runs with the "
            "IDENTITY_ENDPOINT and IDENTITY_HEADER its Azure host set for it now."
        )
    if "did not answer with JSON" in text:
        return (
            "something other than the host's identity endpoint answers there: check that no proxy intercepts "
            "IDENTITY_ENDPOINT or IMDS (list them in NO_PROXY), then restart the worker."
        )
    if "Token request error" in text:
        # The endpoint answered, with something other than a token: it is there, but failing.
        return (
            "the worker's managed identity endpoint answered with an error; raise 'Max Retries' if it passes, "
            "and restart the worker if it persists."
        )
    return NO_MANAGED_IDENTITY


def _workload_identity_advice(code: str | None) -> str:
    if code in _NO_FEDERATED_MATCH:
        return (
            "no federated identity credential of 'Client Id' matches the token's issuer, subject and audience "
            "(compared case-sensitively): add one for the cluster's OIDC issuer URL and subject "
            "system:serviceaccount:<namespace>:<service account>, audience api://AzureADTokenExchange "
            "(az identity federated-credential create), or run the pod under that service account."
        )
    if code == "AADSTS700024":
        return (
            "the federated token has expired: the token file must be the service account token Kubernetes "
            "projects and refreshes (a copy goes stale); check the pod's projected volume."
        )
    if code in ("AADSTS700027", "AADSTS50027"):
        return (
            "the token file does not hold a token signed by the issuer of the federated credential: check "
            "that the credential's issuer is the cluster's OIDC issuer URL (az aks show --query "
            "oidcIssuerProfile.issuerUrl) and that the file is the projected service account token."
        )
    return ""


#: A 404 on the v1 API's paths that the v1 API itself did not send (second-release §B).
V1_NOT_OFFERED: Final = (
    "this endpoint or gateway may not offer the v1 API: set a dated OpenAI API Version on the platform "
    "(for example 2025-04-01-preview)."
)
#: Answered by the v1 API itself: the API is there, the thing asked for is not.
_V1_OWN_404_CODES: Final = frozenset({"DeploymentNotFound", "notFound"})
#: What Azure's strict structured output takes (its 400 says which rule a schema broke).
STRICT_SCHEMA: Final = (
    "Azure's strict structured output takes a schema whose root is an object, in which every object sets "
    "additionalProperties to false and lists every property in required (give an optional value a type "
    'such as ["string", "null"]); fix \'OpenAI Response Format\' or the run\'s response_schema.'
)
#: A reasoning model spent its whole budget reasoning (second-release §C).
REASONING_BUDGET: Final = (
    "raise 'OpenAI Max Tokens': a reasoning model's reasoning tokens count against it, and this run spent "
    "all of it before answering (or lower 'OpenAI Reasoning Effort')."
)


def unparsable_json_fix(finish_reason: str | None) -> str:
    """What to do about an answer that a JSON response format should have made JSON."""
    if finish_reason == "length":
        return "raise 'OpenAI Max Tokens': the answer was cut short before its JSON was complete."
    return "check that the deployment's model supports the requested 'OpenAI Response Format'; the raw text is in 'response'."


def batch_failure_fix(codes: frozenset[str], endpoint: str | None) -> str:
    """What to do about a batch whose input file failed Azure's validation."""
    if "url_mismatch" in codes and endpoint:
        return (
            f"every input line's url must be the batch endpoint {endpoint!r}: the v1 API takes /v1/chat/completions "
            "and /v1/embeddings, a dated api-version /chat/completions and /embeddings. Fix the lines and upload "
            "the file again."
        )
    return "fix the input file (see the errors above) and upload it again."


def advise(
    detail: ErrorDetail, *, operation: str, deployment: str | None = None, api_key: bool = False, v1: bool = False
) -> ErrorDetail:
    """``detail`` with its ``fix`` filled in, unless the place that raised it already knew better."""
    if detail.fix:
        return detail
    return attrs.evolve(detail, fix=advice(detail, operation=operation, deployment=deployment, api_key=api_key, v1=v1))


def advice(detail: ErrorDetail, *, operation: str, deployment: str | None = None, api_key: bool = False, v1: bool = False) -> str:
    """One sentence of advice for ``detail``, or "" when there is nothing specific to say.

    ``operation`` is "chat", "embeddings", "batch" or "discovery"; ``v1`` says the request went
    to the v1 API's paths.
    """
    code = (detail.code or "").split("/")[0]
    status = detail.status
    where = f"'{deployment}'" if deployment else "the deployment"
    if code == "DeploymentNotFound":
        return (
            f"deployment {where} does not exist on this resource (or was created minutes ago). "
            "If the job's 'Deployment Name' was overridden, correct it; otherwise re-run Import Jobs."
        )
    if status == 404 and v1 and code not in _V1_OWN_404_CODES:
        return V1_NOT_OFFERED
    if status == 400 and "Invalid schema for response_format" in detail.message:
        return STRICT_SCHEMA
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
    detail: ErrorDetail, *, what: str, operation: str, deployment: str | None = None, api_key: bool = False, v1: bool = False
) -> str:
    """``what`` failed: the error's substance, then the fix."""
    return advise(detail, operation=operation, deployment=deployment, api_key=api_key, v1=v1).render(f"{what} failed")
