"""Routes whose body is a union told apart by its `type` (a pydantic discriminated
union): a validation error names the field (`flush`), not pydantic's branch
(`files.flush`), and an option of no branch says so.

A custom route class (FastAPI's documented way to wrap a route's handler): the error
is rewritten before the application's handler answers it with 400 and its field.
"""

from typing import Any, ClassVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute


class TaggedBodyRoute(APIRoute):
    TAGS: ClassVar[tuple[str, ...]] = ()  # the values of `type`
    NOUN: ClassVar[str] = "request"  # `not an option of a files restore`

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Any) -> Any:
            try:
                return await handler(request)
            except RequestValidationError as error:
                errors = [self.untagged(e) for e in error.errors()]
                raise RequestValidationError(errors, body=error.body) from None

        return route

    @classmethod
    def untagged(cls, error: dict[str, Any]) -> dict[str, Any]:
        loc = tuple(error.get("loc", ()))
        if error.get("type") in ("union_tag_not_found", "union_tag_invalid"):
            words = f"give the type of {cls.NOUN}: {', '.join(cls.TAGS)}"
            return {**error, "loc": ("body", "type"), "msg": words}
        if len(loc) >= 3 and loc[0] == "body" and loc[1] in cls.TAGS:
            error = {**error, "loc": ("body", *loc[2:])}
            if error.get("type") == "extra_forbidden":
                error["msg"] = f"not an option of a {loc[1]} {cls.NOUN}"
        return error
