"""Helper processes: CPU-bound work of a backup or restore, each under a GIL of its own.

``pool.Helpers`` starts a few ``python -m MODULE`` children and feeds them
batches; ``frames`` is what they speak and the loop a child runs. The archiver
seals small files in them (``drorch.archiver.helper``) and restore writes packs
with them (``drorch.restore.helper``).
"""
