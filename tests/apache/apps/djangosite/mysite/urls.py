"""URL configuration: the admin, and a page that says which process served it."""

import os
import sys

from django.contrib import admin
from django.http import JsonResponse
from django.urls import path


def about(request):
    return JsonResponse(
        {
            "pid": os.getpid(),
            "version_info": list(sys.version_info[:3]),
            "prefix": sys.prefix,
            "process_group": request.META.get("mod_wsgi.process_group"),
        }
    )


urlpatterns = [
    path("admin/", admin.site.urls),
    path("about", about),
]
