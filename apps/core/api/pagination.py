"""Keyset pagination (imported by DRF's settings: keep its imports light)."""

from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination on the primary key (indexed, unique, stable under inserts)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 500
