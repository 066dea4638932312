"""The local state database under ``$DRORCH_HOME``: a journal and a cache, never the truth.

``tables`` holds the connection discipline (WAL, synchronous=FULL, one writer)
and the runs table; ``drills`` the drill history. The runbook journal lives with
the runbook engine and builds on the same ``StateTables`` base.
"""
