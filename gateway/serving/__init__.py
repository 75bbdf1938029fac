"""The running deployment: routing table, dispatcher, supervisor processes, reloads and
asynchronous predictions. It knows no HTTP (never imports aiohttp): :mod:`gateway.web` adapts
it to routes, and the contract in ``pyproject.toml`` keeps it that way."""
