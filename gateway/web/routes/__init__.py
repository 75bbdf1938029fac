"""One module per group of routes, each with an ``install(app)``; only
:func:`gateway.web.app.create_app` imports them, and it decides their order."""
