"""Sources beyond plain directories: disk images, block devices, consistency snapshots and hooks.

    device        open an image or device read-only, its size, where its data is (SEEK_DATA)
    blockmap      per-512 KiB-block SHA-256 of an image, cached locally to skip unchanged blocks
    hooks         pre/post hooks and snapshot tools: argv, timeout, process group, captured output
    snapshots     lvm / zfs / btrfs snapshots: create, the path to read, remove
    consistency   the order of hooks and snapshot around a read, and the always-cleanup guarantees
    archive       archive one policy source of any type inside its consistency context
    checks        what `plan` checks about a source's path
"""
