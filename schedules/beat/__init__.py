"""The fleet scheduler: a Celery beat scheduler for many schedules, several beats and bad rows.

``scheduler.FleetScheduler`` is the loop celery beat drives; it composes one owner per kind
of state: ``table.Table`` (the schedule in memory), ``store.Store`` (the database side),
``lock.LeaderLock`` (leadership) and ``publisher.Publisher`` (sends waiting for the broker).
``entries`` holds the timing rules and the entry type; ``clock`` the one time unit.
"""
