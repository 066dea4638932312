"""The ports: the small Protocols that adapters implement and the plain values they exchange.

Adapters in ``drorch.providers`` import only this package and their SDK, never
the domain (policy, repository, runbook, drill). What lives here:

    errors     the one exception hierarchy (every adapter raises these)
    config     plain, frozen configuration of a target as an adapter receives it
    store      ObjectStore: named immutable objects (every storage backend)
    kms        Kms: wrap and unwrap a repository's data key
    recovery   Compute, Dns, Notifier, Prober: what runbook steps drive
    sandbox    SandboxCloud: the isolated network a drill launches into
    ebs        BlockExporter: send an image's blocks to a cloud block store
    deadline   a step's time budget, shared by the engine and adapters
    progress   the progress sink long work reports to
"""
