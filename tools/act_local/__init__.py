"""``python3 scripts/dev act``: a repository's workflows through act, using this checkout's actions.

workflows: what the workflows use and run on; view: the slim copy of this
checkout act is pointed at; actlog: act's JSON log shown and read; processes:
the collector, tbot on PATH, leftover daemons; report: the closing summary.
"""
