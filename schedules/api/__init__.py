"""The REST API: views, serializers, filters, routes and the DRF hooks (authentication,
permissions, parser, exception handler) that settings.REST_FRAMEWORK names.

Reads go through ``schedules.selectors``, writes through ``schedules.services``.
"""
