"""The ``modelgate`` command (:mod:`.main`): thin, on top of everything else; each command is a
module whose functions tests call too. ``python -m gateway.cli`` runs it as well."""
