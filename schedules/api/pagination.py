"""Pages of a list: ``?page=`` and ``?page_size=`` are checked like any other parameter."""

from django.core.paginator import InvalidPage
from rest_framework import exceptions, pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        return self._whole_number(raw, self.page_size_query_param, high=self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's, with a 400 for a page that is not a number and a 404 that says how many pages exist."""
        paginator = self.django_paginator_class(queryset, self.get_page_size(request))
        raw = request.query_params.get(self.page_query_param, "1")
        number = self._whole_number(raw, self.page_query_param)
        try:
            self.page = paginator.page(number)
        except InvalidPage:
            pages = paginator.num_pages
            raise exceptions.NotFound(
                f"Page {number} does not exist; the last page is {pages}."
                if pages > 1
                else f"Page {number} does not exist; there is one page."
            ) from None
        self.request = request
        return list(self.page)

    @staticmethod
    def _whole_number(raw: str, name: str, high: int | None = None) -> int:
        bound = f" from 1 to {high}" if high else " from 1"
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1 or (high and int(raw) > high):
            raise exceptions.ValidationError({name: [f"{name} must be a whole number{bound}."]})
        return int(raw)
