"""The HTTP side: aiohttp routes over :mod:`gateway.serving`, which never imports this package.

:func:`gateway.web.app.create_app` assembles the app and is the only importer of
:mod:`gateway.web.routes`; handlers reach the running service through the typed keys of
:mod:`gateway.web.keys`.
"""
