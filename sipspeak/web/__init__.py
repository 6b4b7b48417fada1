"""aiohttp admin UI, operator workspace and REST API."""
