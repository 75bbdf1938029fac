"""The process side of modelgate: pool supervisors, worker loops and language runners.

The gateway never imports from here except :mod:`workers.wire`, the protocol both sides speak.
"""
