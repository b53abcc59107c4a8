"""The API's routes, one module per part of the guide's API; ROUTERS needs the token."""

from fastapi import APIRouter

ROUTERS: list[APIRouter] = []
