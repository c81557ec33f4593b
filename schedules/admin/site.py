"""The admin site itself: its titles."""

from django.contrib import admin

admin.site.site_header = "luffy-admin"
admin.site.site_title = "luffy-admin"
admin.site.index_title = "Services and their task schedules"
