"""``drorch restore``: the source directory's contents into --to, byte-identical, with metadata."""

from __future__ import annotations

import fnmatch
import os

import pytest


@pytest.fixture
def applied(tmp_path, dataset, drorch_env, e2e):
    """A data set and a policy with one snapshot of it; returns (policy, snapshot id)."""
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    return policy, e2e.apply_ok(policy, drorch_env)["snapshot"]


def test_restore_is_byte_identical_with_metadata(tmp_path, dataset, applied, drorch_env, e2e):
    policy, snapshot = applied
    out = tmp_path / "out"
    doc = e2e.drorch_json("restore", policy, "latest", "--to", out, env=drorch_env)
    assert doc["snapshot"] == snapshot
    e2e.assert_same_tree(dataset, out)
    want = e2e.tree_state(dataset)
    assert doc["files"] == sum(1 for v in want.values() if v[0] == "file")
    assert doc["symlinks"] == sum(1 for v in want.values() if v[0] == "symlink")
    # the pieces the comparison covers, spelled out
    assert (out / "empty-dir").is_dir() and not any((out / "empty-dir").iterdir())
    assert (out / "empty.txt").stat().st_size == 0
    assert os.readlink(out / "dangling-link") == "no/such/target"
    assert os.readlink(out / "nested" / "absolute-link") == "/etc/hostname"
    assert (out / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (out / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "readonly.txt").stat().st_mode & 0o777 == 0o444
    assert (out / "private").stat().st_mode & 0o777 == 0o700
    assert (out / "big.bin").stat().st_mtime_ns == (dataset / "big.bin").stat().st_mtime_ns


def test_restore_by_id_prefix(tmp_path, dataset, applied, drorch_env, e2e):
    policy, snapshot = applied
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, snapshot[:8], "--to", out, "--quiet",
                          env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert snapshot[:8] in proc.stdout
    e2e.assert_same_tree(dataset, out)


def _expected_subset(state: dict[str, tuple], keep) -> dict[str, tuple]:
    """The entries ``keep`` accepts plus the directories leading to them (mode only:
    a directory restored for its children carries its own metadata, so compare all)."""
    chosen = {rel: v for rel, v in state.items() if v[0] != "dir" and keep(rel)}
    for rel in list(chosen):
        parent = os.path.dirname(rel)
        while parent:
            chosen[parent] = state[parent]
            parent = os.path.dirname(parent)
    return chosen


@pytest.mark.parametrize("pattern, keep", [
    ("big.bin", lambda rel: rel == "big.bin"),
    ("nested/*", lambda rel: rel.startswith("nested/")),
    ("text/*.md", lambda rel: fnmatch.fnmatch(rel, "text/*.md")),
])
def test_restore_include_glob(tmp_path, dataset, applied, drorch_env, e2e, pattern, keep):
    policy, _ = applied
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--include", pattern,
                          "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    want = _expected_subset(e2e.tree_state(dataset), keep)
    assert want, "the pattern should match something in the data set"
    # directories that only lead to included files may take their own mtime: compare
    # files and links fully, directories by presence and mode
    got = e2e.tree_state(out)
    assert sorted(got) == sorted(want), f"include {pattern!r} restored the wrong set"
    for rel, value in want.items():
        if value[0] == "dir":
            assert got[rel][:2] == value[:2], rel
        else:
            assert got[rel] == value, rel


def test_restore_two_includes(tmp_path, dataset, applied, drorch_env, e2e):
    policy, _ = applied
    out = tmp_path / "out"
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--include", "run.sh",
                          "--include", "link-to-readme", "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    assert sorted(os.listdir(out)) == ["link-to-readme", "run.sh"]
    assert (out / "run.sh").read_bytes() == (dataset / "run.sh").read_bytes()
    assert os.readlink(out / "link-to-readme") == "text/readme.txt"


def test_restore_into_existing_directory_overwrites_files(
        tmp_path, dataset, applied, drorch_env, e2e):
    policy, _ = applied
    out = tmp_path / "out"
    (out / "text").mkdir(parents=True)
    (out / "text" / "readme.txt").write_bytes(b"stale content, much longer than nothing " * 9000)
    (out / "run.sh").symlink_to("/etc/hostname")  # a link where a file belongs
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, out)


def test_restore_replaces_a_file_where_a_symlink_belongs(
        tmp_path, dataset, applied, drorch_env, e2e):
    """Restoring over damaged data: what is in the way of an entry is replaced by it."""
    policy, _ = applied
    out = tmp_path / "out"
    out.mkdir()
    (out / "link-to-readme").write_bytes(b"a regular file where a symlink belongs")
    proc = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet", env=drorch_env)
    assert proc.returncode == 0, e2e.describe(proc)
    e2e.assert_same_tree(dataset, out)


def test_restore_unknown_snapshot_is_a_usage_error(tmp_path, applied, drorch_env, drorch_key,
                                                  e2e):
    policy, _ = applied
    proc = e2e.run_drorch("restore", policy, "deadbeef", "--to", tmp_path / "out", "--quiet",
                          env=drorch_env)
    e2e.assert_one_error(proc, 2, "deadbeef", secret=drorch_key)


def test_non_utf8_file_name_does_not_break_the_backup(tmp_path, dataset, drorch_env, e2e):
    """Linux names are bytes; one that is not UTF-8 must not fail the whole snapshot.

    Either it is archived (and restored under the same bytes) or it is skipped
    and listed (exit 3); the rest of the data set is protected in both cases.
    """
    odd = os.fsencode(dataset) + b"/latin1-caf\xe9.txt"
    with open(odd, "wb") as fh:
        fh.write(b"named in latin-1\n")
    policy = e2e.make_policy(tmp_path, dataset, tmp_path / "repo")
    proc = e2e.run_drorch("apply", policy, "--json", env=drorch_env)
    assert proc.returncode in (0, 3), e2e.describe(proc)
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    if proc.returncode == 3:  # skipped: it must be named, the rest still protected
        assert "latin1-caf" in proc.stdout, e2e.describe(proc)
        os.unlink(odd)
    out = tmp_path / "out"
    restored = e2e.run_drorch("restore", policy, "latest", "--to", out, "--quiet",
                              env=drorch_env)
    assert restored.returncode == 0, e2e.describe(restored)
    e2e.assert_same_tree(dataset, out)  # with the odd name when it was archived


def test_latest_is_refused_when_a_target_holds_several_mirrors(tmp_path, drorch_env, e2e):
    """At 3 a.m. `latest` must not restore another mirror's data: it asks for --mirror."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, text in ((first, "first\n"), (second, "second\n")):
        folder.mkdir()
        (folder / "which.txt").write_text(text)
    policy = tmp_path / "two.yaml"
    policy.write_text(f"""apiVersion: drorch/v1
kind: MirrorPolicy
metadata: {{name: two}}
encryption: {{key: env:DRORCH_KEY}}
sources: [{{name: a, type: directory, path: {first}}}, {{name: b, type: directory, path: {second}}}]
targets: [{{name: local, url: "file://{tmp_path / 'repo'}"}}]
mirrors:
  - {{name: ma, source: a, targets: [local], rpo: 1h}}
  - {{name: mb, source: b, targets: [local], rpo: 1h}}
""")
    assert e2e.run_drorch("apply", policy, "--quiet", env=drorch_env).returncode == 0
    proc = e2e.run_drorch("restore", policy, "latest", "--to", tmp_path / "out", env=drorch_env)
    sentence = e2e.assert_one_error(proc, 2, "latest` is ambiguous")
    assert "ma, mb" in sentence
    ok = e2e.run_drorch("restore", policy, "latest", "--mirror", "ma", "--to", tmp_path / "out",
                        env=drorch_env)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / "which.txt").read_text() == "first\n"
