"""Rich gRPC errors (google.rpc.Status with BadRequest / ErrorInfo details).

Servicers raise `ServiceError`; the error interceptor turns it into a status the
gateway renders as JSON (`convert_grpc_status`). Bad input is always one of these,
never INTERNAL.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "tradesense.io"


class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")), grpc.Status):  # type: ignore[misc]
    """A status with metadata of our own beside the details (grpc_status builds the same)."""


class ServiceError(Exception):
    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        field_violations: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.field_violations = dict(field_violations or {})

    def to_status(self) -> grpc.Status:
        details: list[any_pb2.Any] = []
        if self.field_violations:
            br = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                    for f, d in self.field_violations.items()
                ]
            )
            a = any_pb2.Any()
            a.Pack(br)
            details.append(a)
        if self.reason:
            info = error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)
            a = any_pb2.Any()
            a.Pack(info)
            details.append(a)
        status = status_pb2.Status(code=self.code.value[0], message=self.message, details=details)
        converted = rpc_status.to_status(status)
        retry = self.metadata.get("retry_after_seconds")
        if retry is None:
            return converted
        # Also as a header: the gateway passes it on as HTTP's Retry-After, which clients and
        # libraries honour without reading our error details.
        return _Status(converted.code, converted.details, (*converted.trailing_metadata, ("retry-after", retry)))


def invalid_argument(violations: Mapping[str, str], message: str = "invalid request") -> ServiceError:
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT, message, reason="INVALID_ARGUMENT", field_violations=violations
    )


def not_found(what: str, reason: str = "NOT_FOUND") -> ServiceError:
    return ServiceError(grpc.StatusCode.NOT_FOUND, f"{what} not found", reason=reason)


def already_exists(message: str, reason: str = "ALREADY_EXISTS") -> ServiceError:
    return ServiceError(grpc.StatusCode.ALREADY_EXISTS, message, reason=reason)


def failed_precondition(message: str, reason: str, **metadata: str) -> ServiceError:
    return ServiceError(grpc.StatusCode.FAILED_PRECONDITION, message, reason=reason, metadata=metadata)


def unauthenticated(message: str = "authentication required", reason: str = "UNAUTHENTICATED") -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAUTHENTICATED, message, reason=reason)


def permission_denied(message: str = "permission denied", reason: str = "PERMISSION_DENIED") -> ServiceError:
    return ServiceError(grpc.StatusCode.PERMISSION_DENIED, message, reason=reason)


def unavailable(message: str, reason: str = "UNAVAILABLE") -> ServiceError:
    return ServiceError(grpc.StatusCode.UNAVAILABLE, message, reason=reason)


def internal_status() -> grpc.Status:
    """What the caller sees for an unexpected failure: no detail leaks out."""
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message="internal error"))


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, raised by asyncpg or wrapped by SQLAlchemy."""
    seen: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy: DBAPIError.orig -> its adapter's error -> asyncpg's, as __cause__
        if seen is None:
            return None
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def refused_value(exc: BaseException) -> ServiceError:
    """A value the database refused to store (SQLSTATE class 22: a NUL byte in text, a number
    past its column's range): the caller's bad input, answered as such. The database's own
    message is not echoed; it may quote the value back at any length."""
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"a value in the request cannot be stored (SQLSTATE {sqlstate(exc)})",
        reason="VALUE_NOT_STORABLE",
    )


def is_refused_value(exc: BaseException) -> bool:
    state = sqlstate(exc)
    return state is not None and state.startswith("22")
