"""A source of nested directories, for the archiver tests."""

from __future__ import annotations

from pathlib import Path


def nested_source(root: Path, subs: int, files: int, repeat: int) -> Path:
    """``root/tT/sS/fN`` for 3 tops, ``subs`` subdirectories and ``files`` files each (the text
    ``T/S/N`` ``repeat`` times), and the symlink ``t0/link`` → ``s0/f0``."""
    for top in range(3):
        for sub in range(subs):
            folder = root / f"t{top}" / f"s{sub}"
            folder.mkdir(parents=True)
            for n in range(files):
                (folder / f"f{n}").write_text(f"{top}/{sub}/{n}\n" * repeat)
    (root / "t0" / "link").symlink_to("s0/f0")
    return root
