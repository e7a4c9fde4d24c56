import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inbox.settings")
django_application = get_asgi_application()

# The live events stream is served beside Django, not through it (inbox/live/asgi.py says why).
from inbox.live.asgi import with_live_events  # noqa: E402  (needs the settings loaded)

application = with_live_events(django_application)
