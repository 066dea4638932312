"""The engine: one function per job, the one every caller uses.

The CLI, the scheduler, runbook steps and fleet activities call these and
nothing below them, so a job behaves the same whoever starts it:

    plan.build_plan(policy, keys=...)        what apply would do; opens, never writes
    apply.run_mirror(mirror_plan, keys)      make one mirror current (archive, fan-out, retention)
    apply.apply(plan) / apply_policy(policy) every mirror of a plan / of a policy
    operations.restore(...)                  a snapshot back onto a directory, file or device
    operations.verify(...)                   structure check; with read_data every byte
    operations.list_snapshots(...)           snapshots per target
    status.policy_status(policy, keys)       RPO compliance from the repositories, last drills
    ebs.export_ebs(...)                      an image snapshot as a cloud block snapshot

``connect.open_repository`` opens a policy target's repository for the jobs
that start from a target name rather than a plan.
"""
