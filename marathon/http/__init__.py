"""Marathon's v2 REST API over aiohttp: `base` (route table, bodies, errors), one route
module per area, composed in `app.make_app`."""
