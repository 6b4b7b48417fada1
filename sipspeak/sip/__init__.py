"""Sans-IO SIP (RFC 3261, 3264, 4566, 7616) and its thin asyncio transports."""
