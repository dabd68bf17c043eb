"""A lighter request path for the busiest routes (payments, fraud decisions).

FastAPI resolves an endpoint's parameters through its general dependency solver: a tree of
dependencies, each awaited and cached, the body decoded by the json module and validated
as Python objects, the answer validated again against the response model. For a payment or
a fraud decision that was ~140 µs of CPU per request on top of Starlette's own work
(an empty endpoint under uvicorn: ADR 0006). A :class:`LeanRoute` keeps the route as declared
(path, OpenAPI schema, status code, Starlette's exception handlers) and resolves the few
kinds of parameters these endpoints use directly:

- the JSON body model, parsed from the bytes by pydantic-core in one pass;
- path, query and header parameters, read and validated as FastAPI's own function for
  them does (:class:`_Scalar`), or by that function where they are not plain values;
- the services, the caller's locale and the caller's key with its scope
  (:mod:`haetae.deps`: the same functions the dependencies call).

Where a route takes anything else, or FastAPI's internals are not what this module reads,
the route keeps FastAPI's handler and says so in the log at start-up: slower, never wrong.
The caller's key is checked before the body is parsed, so an unauthenticated request learns
nothing about its body (FastAPI reports a malformed JSON body first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import fastapi.dependencies.utils as fastapi_params
import fastapi.routing
import structlog
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Json, ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from haetae.deps import (
    ScopeCheck,
    authenticate,
    bearer_token,
    check_scope,
    get_locale,
    get_services,
)
from haetae.services import Services

log = structlog.get_logger(__name__)

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Resolver = Callable[[Request, Services], Awaitable[Any]]


class NotLean(Exception):
    """The route takes something a lean route does not resolve (the message says what)."""


async def _services(request: Request, services: Services) -> Services:
    return services


async def _locale(request: Request, services: Services) -> Any:
    return await get_locale(request.headers.get("accept-language"))


def _scoped(scope: Any) -> Resolver:
    async def resolve(request: Request, services: Services) -> Any:
        token = bearer_token(request.headers.get("authorization"))
        return check_scope(await authenticate(request, services, token), scope)

    return resolve


def _resolver(dependency: Dependant) -> Resolver:
    call = dependency.call
    if call is get_services:
        return _services
    if call is get_locale:
        return _locale
    if isinstance(call, ScopeCheck):
        return _scoped(call.scope)
    raise NotLean(f"dependency {getattr(call, '__name__', call)!r}")


@dataclass(frozen=True, slots=True)
class _Scalar:
    """One plain parameter (a header, a query or path value: not a list, not a model), read
    as FastAPI's ``request_params_to_args`` reads it: under the first of its names that is
    present, its default when absent, validated by its field with the same error location.
    That function re-derives all of this on every request (a third of the cost of a
    payment's parameters); here it is worked out once."""

    field: Any  # FastAPI's ModelField
    names: tuple[str, ...]  # where to look, in FastAPI's order
    where: str  # "header", "query" or "path"

    def read(self, received: Mapping[str, Any], values: dict[str, Any], errors: list[Any]) -> None:
        name = next((n for n in self.names if n in received), self.names[0])
        value = received.get(name)
        field, loc = self.field, (self.where, name)
        if value is None:
            if field.field_info.is_required():
                errors.append(fastapi_params.get_missing_field_error(loc=loc))
                return
            value = deepcopy(field.default)
            if not field.field_info.validate_default:
                values[field.name] = value
                return
        validated, found = field.validate(value, values, loc=loc)
        if found:
            errors.extend(found)
        else:
            values[field.name] = validated


def _scalar(field: Any) -> _Scalar | None:
    """The fast reading of ``field``, or None where FastAPI's own function must read it (a
    list, a model of parameters, a JSON value, or FastAPI's helpers not as expected)."""
    aliases = getattr(fastapi_params, "_get_param_aliases", None)
    param_model = getattr(fastapi_params, "_get_param_model", None)
    if aliases is None or param_model is None or param_model(field) is not None:
        return None
    info = field.field_info
    if fastapi_params.field_annotation_is_sequence(info.annotation) or any(
        type(item) is Json for item in info.metadata
    ):
        return None
    return _Scalar(field, tuple(alias for _, alias in aliases(field)), info.in_.value)


# Reads one source's parameters into the endpoint's arguments, and their errors.
_Reader = Callable[[Mapping[str, Any], dict[str, Any], list[Any]], None]


def _reader(fields: list[Any]) -> _Reader:
    """Each field read on its own when all of them are plain; otherwise all of them by
    FastAPI's function (so that errors keep FastAPI's order)."""
    scalars = [_scalar(field) for field in fields]
    if all(scalars):
        plain = tuple(scalar for scalar in scalars if scalar is not None)

        def read_plain(
            received: Mapping[str, Any], values: dict[str, Any], errors: list[Any]
        ) -> None:
            for scalar in plain:
                scalar.read(received, values, errors)

        return read_plain

    def read_all(received: Mapping[str, Any], values: dict[str, Any], errors: list[Any]) -> None:
        found, problems = request_params_to_args(fields, received)
        values.update(found)
        errors.extend(problems)

    return read_all


@dataclass(frozen=True)
class _Plan:
    """How one route's endpoint gets its arguments and how its answer is sent."""

    call: Callable[..., Awaitable[Any]]
    # in the endpoint's order; a dependency without a name (``dependencies=[...]`` of the
    # route) is run for its checks, its value not passed
    resolvers: tuple[tuple[str | None, Resolver], ...]
    request_name: str | None
    # (where the values are in the request, how to read them): path, query, header
    params: tuple[tuple[Callable[[Request], Any], _Reader], ...]
    body_name: str | None
    body_model: type[BaseModel] | None
    response_model: type[BaseModel] | None
    status_code: int

    async def handle(self, request: Request) -> Response:
        services: Services = request.app.state.services
        kwargs: dict[str, Any] = {}
        for name, resolve in self.resolvers:
            value = await resolve(request, services)
            if name:
                kwargs[name] = value
        if self.request_name:
            kwargs[self.request_name] = request
        errors: list[Any] = []
        for source, read in self.params:
            read(source(request), kwargs, errors)
        raw = b""
        if self.body_model is not None and self.body_name is not None:
            raw = await request.body()
            try:
                kwargs[self.body_name] = self.body_model.model_validate_json(raw)
            except ValidationError as invalid:
                errors.extend(
                    {**error, "loc": ("body", *error["loc"])}
                    for error in invalid.errors(include_url=False)
                )
        if errors:
            raise RequestValidationError(errors, body=raw)
        result = await self.call(**kwargs)
        if isinstance(result, Response):
            return result
        if self.response_model is not None and type(result) is self.response_model:
            return Response(
                result.model_dump_json(),
                status_code=self.status_code,
                media_type="application/json",
            )
        raise TypeError(f"{self.call.__name__} returned {type(result).__name__}")


def _body_model(dependant: Dependant) -> tuple[str | None, type[BaseModel] | None]:
    if not dependant.body_params:
        return None, None
    if len(dependant.body_params) > 1:
        raise NotLean("more than one body parameter")
    field = dependant.body_params[0]
    model = field.field_info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise NotLean(f"body {field.name!r} is not a pydantic model")
    return field.name, model


def plan_for(route: APIRoute, dependant: Dependant) -> _Plan:
    """The lean plan of a route, or :class:`NotLean` saying why it has none."""
    unsupported = [
        name
        for name in (
            "websocket_param_name",
            "http_connection_param_name",
            "response_param_name",
            "background_tasks_param_name",
            "security_scopes_param_name",
        )
        if getattr(dependant, name)
    ]
    if unsupported or dependant.cookie_params:
        raise NotLean(", ".join(unsupported) or "cookie parameters")
    shaping = (
        route.response_model_include,
        route.response_model_exclude,
        route.response_model_exclude_unset,
        route.response_model_exclude_defaults,
        route.response_model_exclude_none,
    )
    if any(shaping) or not route.response_model_by_alias:
        raise NotLean("a shaped response model")
    response_model = route.response_model
    if response_model is not None and not (
        isinstance(response_model, type) and issubclass(response_model, BaseModel)
    ):
        raise NotLean("a response model that is not a pydantic model")
    body_name, body_model = _body_model(dependant)
    if dependant.call is None:
        raise NotLean("no endpoint")
    return _Plan(
        call=dependant.call,
        resolvers=tuple((d.name, _resolver(d)) for d in dependant.dependencies),
        request_name=dependant.request_param_name,
        params=tuple(
            (source, _reader(fields))
            for source, fields in (
                (attrgetter("path_params"), dependant.path_params),
                (attrgetter("query_params"), dependant.query_params),
                (attrgetter("headers"), dependant.header_params),
            )
            if fields
        ),
        body_name=body_name,
        body_model=body_model,
        response_model=response_model,
        status_code=route.status_code or 200,
    )


def _effective_dependant(route: APIRoute) -> Dependant:
    """The dependant FastAPI serves the route with: an included router's context adds its
    prefix and dependencies (FastAPI 0.16x builds the handler inside that context)."""
    context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = context_var.get() if context_var is not None else None
    if context is not None and getattr(context, "original_route", None) is route:
        dependant: Dependant = context.dependant
        return dependant
    return route.dependant


class LeanRoute(APIRoute):
    """An APIRoute served by its lean plan when it has one (see the module doc)."""

    plan: _Plan | None = None

    @property
    def lean(self) -> bool:
        return self.plan is not None

    def get_route_handler(self) -> Handler:
        try:
            self.plan = plan_for(self, _effective_dependant(self))
        except NotLean as reason:
            log.warning("lean_route.unavailable", path=self.path, reason=str(reason))
            self.plan = None
            return super().get_route_handler()
        return self.plan.handle


class LeanDispatch:
    """ASGI middleware: the lean routes of fixed paths served before FastAPI's routing.

    Past Starlette's error middleware, FastAPI still matched the path router by router,
    opened its exit stacks and wrapped the handler in its own exception handling: about a
    tenth of a fraud decision's CPU (bench/RESULTS.md). Here a request for one of these
    paths goes straight to its plan; an error is answered by the app's own exception
    handlers, as inside FastAPI, and one without a handler goes on to Starlette's error
    middleware (a 500 through the app's handler of ``Exception``).
    """

    def __init__(
        self, app: ASGIApp, *, routes: Iterable[LeanRoute], handlers: Mapping[Any, Any]
    ) -> None:
        self.app = app
        self.paths: dict[tuple[str, str], _Plan] = {
            (method, route.path): route.plan
            for route in routes
            if route.plan is not None and "{" not in route.path
            for method in route.methods or ()
        }
        self._handlers = handlers  # the app's, as registered (read at each error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self.paths.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if plan is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await plan.handle(request)
        except Exception as error:
            handler = self._handler_for(error)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)

    def _handler_for(self, error: Exception) -> Any:
        for kind in type(error).__mro__:
            if kind is Exception:  # Starlette's error middleware calls that one
                return None
            if kind in self._handlers:
                return self._handlers[kind]
        return None
