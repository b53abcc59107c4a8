"""The encryption keys kept in AWS Secrets Manager, as the guide recommends.

BACKUP_ENCRYPTION_KEY_SECRET_ID (and BACKUP_ENCRYPTION_KEY_PREVIOUS_SECRET_ID) name a
secret whose string is the key (the previous keys comma-separated), or a JSON object
holding it under the variable's name. It is fetched once per process with boto3's own
credential chain (instance role, profile, AWS_ACCESS_KEY_ID), region AWS_REGION and
boto3's endpoint setting (AWS_ENDPOINT_URL_SECRETS_MANAGER), every call bounded in time.
The value is registered for redaction as soon as it arrives and never appears in an
error: a failure names the secret id and what to do.

boto3 is imported only when a secret is read.
"""

import json
import threading

from engines.errors import KeySecretError
from engines.plumbing.redaction import redact, register_secrets

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 10
ATTEMPTS = 3  # botocore's standard mode: the first try and two retries with backoff
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})
DENIED_CODES = frozenset({"AccessDeniedException", "UnrecognizedClientException"})
UNREADABLE_CODES = frozenset({"InvalidRequestException", "DecryptionFailure"})

_fetched: dict[tuple[str, str | None], str] = {}
_lock = threading.Lock()


def secret_value(secret_id: str, variable: str, region: str | None) -> str:
    """What the secret holds for `variable` (the key's hex, or keys comma-separated)."""
    with _lock:
        cached = _fetched.get((secret_id, region))
    if cached is None:
        cached = _fetch(secret_id, variable, region)
        parts = [cached, cached.strip(), *(part.strip() for part in cached.split(","))]
        register_secrets([text for part in parts for text in (part, part.upper()) if text])
        with _lock:
            _fetched[(secret_id, region)] = cached
    return _value_for(cached, secret_id, variable)


def _value_for(text: str, secret_id: str, variable: str) -> str:
    if not text.lstrip().startswith("{"):
        return text.strip()
    try:
        fields = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json parses
        fields = None
    if isinstance(fields, dict):
        value = fields.get(variable)
        if value is None and len(fields) == 1:
            value = next(iter(fields.values()))
        if isinstance(value, str):
            parts = [value.strip(), *(part.strip() for part in value.split(","))]
            register_secrets([text for part in parts for text in (part, part.upper()) if text])
            return value.strip()
    raise KeySecretError(
        f"AWS Secrets Manager secret {secret_id} is JSON without a {variable} string; store "
        f'the key as the secret\'s whole string, or as {{"{variable}": "..."}}'
    )


def _fetch(secret_id: str, variable: str, region: str | None) -> str:
    import boto3.session
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": ATTEMPTS},
    )
    try:
        client = boto3.session.Session(region_name=region).client("secretsmanager", config=config)
        response = client.get_secret_value(SecretId=secret_id)
    except Exception as error:
        raise KeySecretError(_explain(error, secret_id, variable, region)) from None
    text = response.get("SecretString")
    if not isinstance(text, str) or not text.strip():
        raise KeySecretError(
            f"AWS Secrets Manager secret {secret_id} holds no text (binary or empty); store "
            f"{variable} in it as a string"
        )
    return text


def _explain(error: BaseException, secret_id: str, variable: str, region: str | None) -> str:
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )

    where = f"AWS Secrets Manager secret {secret_id} ({variable}_SECRET_ID, region {region})"
    response = getattr(error, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    if code in NOT_FOUND_CODES:
        return (
            f"{where} does not exist; create it (`aws secretsmanager create-secret --name "
            f"{secret_id} --secret-string ...`) or correct {variable}_SECRET_ID and AWS_REGION"
        )
    if code in DENIED_CODES:
        return (
            f"{where} may not be read with these AWS credentials ({code}); grant "
            "secretsmanager:GetSecretValue on it to this host's role"
        )
    if code in UNREADABLE_CODES:
        return f"{where} cannot be read ({code}: {redact(str(error))}); check the secret"
    if isinstance(error, NoCredentialsError):
        return (
            f"{where}: no AWS credentials found; give the host a role or profile (or set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    if isinstance(error, NoRegionError):
        return f"{where}: no region; set AWS_REGION"
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return (
            f"{where} could not be reached ({type(error).__name__}); check the network and "
            "AWS_REGION, then try again"
        )
    detail = f"{code}: " if code else f"{type(error).__name__}: "
    return f"{where} could not be read ({detail}{redact(str(error))}); try again later"
