"""Placeholder router; the checkout page is added next."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
