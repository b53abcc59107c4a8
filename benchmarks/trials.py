"""Attack a real repository the way issue 12's audit did, and count what was lost.

    .venv/bin/python benchmarks/trials.py                 # every trial, full counts
    .venv/bin/python benchmarks/trials.py --quick         # a few of each (~5 min)
    .venv/bin/python benchmarks/trials.py --only swap,kill --kills 3 --seed 7

Real `jarvis-tui` processes against a fresh repository over throwaway PostgreSQL and
Redis servers (tests/support/), with real data: tables of tens of thousands of rows,
a few thousand Redis keys, a few hundred user files (some cut into several chunks),
a secrets .env and a config folder. The trials:

  swap      another backup's genuine artifact and sidecar copied over this backup's,
            for every kind (and, without --quick, every other kind's under its name);
            restore, decrypt, export and drill must refuse and write nothing
  sidecar   each field of each kind's sidecar edited without the key; catalog rebuild
            must not take it, and no restore may write anywhere but the genuine target
  damage    one byte appended to a pack, a bit flipped in a trailer, trailers swapped
            between packs, an old index replayed; then verify --read-data, prune and
            cleanup; then every file of every snapshot restored and compared
  kill      kill -9 of each command at seeded delays; earlier backups still verify,
            live data intact (a restore's target untouched or complete), and after the
            next run no temporaries, scratch databases or spare Redis databases
  readonly  the repository chmod -R a-w (the CLI without root's DAC override) and
            under a read-only bind mount: every command, exit codes, tracebacks, changes
  full      the repository on a tmpfs with no space left: the same

It prints one row per trial: tried, lost/redirected, tracebacks, notes; then every
defect seen. The exit status is 1 when anything was lost or redirected. Needs root for
the mounts (the readonly and full trials are skipped otherwise).
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.trial_world import (  # noqa: E402
    KEY,
    TARGET_DB,
    TEMP_MARKER,
    Run,
    World,
    kill_now,
    tree_digest,
)

VERBOSE = False
TRIALS = ("swap", "sidecar", "damage", "kill", "readonly", "full")
INTEGRITY = 4
SCRATCH_PREFIX = "jarvis_scratch_"
SPARE_MARKER = b"jarvis-tui:restore-spare"
SETPRIV_NO_DAC = (
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
)


@dataclass
class Tally:
    name: str
    tried: int = 0
    lost: int = 0
    tracebacks: int = 0
    notes: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)

    def saw(self, *runs: Run) -> None:
        for run in runs:
            if run.traceback:
                self.tracebacks += 1
                self.defects.append(f"traceback: {run.brief()}")

    def lose(self, what: str) -> None:
        self.lost += 1
        self.defects.append(what)
        self.log(f"LOST: {what}")

    def log(self, line: str) -> None:
        if VERBOSE:
            print(f"  [{self.name.split()[0]}] {line}", flush=True)


@dataclass
class Options:
    seed: int
    quick: bool
    kills: int
    fields: int
    damages: int
    cross: bool
    only_kills: tuple[str, ...] = ()


# --- the base repository -------------------------------------------------------------------


@dataclass
class Base:
    """What the trials start from: backups of two generations and a full set."""

    snapshots: dict[str, dict[str, str]]  # files set id -> the source tree when backed up
    full_set: str


def build_base(world: World) -> Base:
    snapshots: dict[str, dict[str, str]] = {}
    must(world.run("init"))
    for _ in range(2):
        for kind in ("postgres", "redis", "files", "secrets", "config"):
            must(world.run("backup", kind))
        snapshots[world.sets("files")[-1]] = tree_digest(world.data)
        world.change_sources()
    must(world.run("backup", "full"))
    full_set = world.sets("full")[-1]
    snapshots[full_set] = tree_digest(world.data)
    must(world.run("catalog", "rebuild"))  # rows as the rebuild writes them, to compare later
    world.change_sources()  # the live data now differs from every backup
    world.save("base")
    return Base(snapshots, full_set)


def must(run: Run) -> Run:
    if run.code != 0:
        raise SystemExit(f"set-up failed: {run.brief()}\n{run.err[-2000:]}")
    return run


# --- 1. swapped artifacts ------------------------------------------------------------------

# kind: (source, artifact mode)
KINDS = {
    "postgres": ("postgres", "full"),
    "redis rdb": ("redis", "rdb"),
    "redis json": ("redis", "json"),
    "files manifest": ("files", "full"),
    "secrets": ("secrets", "file"),
    "config": ("config", "tar"),
}


def swap_commands(world: World, kind: str, ours: str, out: Path) -> list[tuple[str, ...]]:
    source, _ = KINDS[kind]
    decrypt = [("decrypt", str(world.artifact_path(ours, KINDS[kind][1], source)), "-o", str(out))]
    if kind == "postgres":
        return [
            ("restore", "postgres", ours, "--target-db", "trials_swapped"),
            ("restore", "postgres", ours, "--drop-existing"),
            (
                "decrypt",
                "--sql",
                str(world.artifact_path(ours, "full", "postgres")),
                "-o",
                str(out),
            ),
            *decrypt,
        ]
    if kind == "redis rdb":
        return [
            ("restore", "redis", ours, "--flush"),
            ("restore", "redis", ours, "--replace"),
            *decrypt,
        ]
    if kind == "redis json":
        return [
            ("restore", "redis", ours, "--flush", "--from-json"),
            ("restore", "redis", ours, "--replace", "--from-json"),
            *decrypt,
        ]
    if kind == "files manifest":
        return [
            ("restore", "files", ours, "--target-dir", str(out / "files")),
            ("restore", "files", ours, "--overwrite", "always"),
            ("export", "files", ours, "--tar", str(out / "export.tar.gz")),
            *decrypt,
        ]
    if kind == "secrets":
        return [
            ("restore", "secrets", ours, "--force"),
            ("restore", "secrets", ours, "--to", str(out / "restored.env")),
            *decrypt,
        ]
    return [
        ("restore", "config", ours, "--force"),
        ("restore", "config", ours, "--target-dir", str(out / "conf")),
        *decrypt,
    ]


def targets_state(world: World) -> dict[str, object]:
    return {**world.sources_state(), "out": tree_digest(world.out)}


def trial_swap(world: World, base: Base, options: Options) -> Tally:
    tally = Tally("swap (artifact + sidecar of another backup)")
    world.load("base")
    ours = base.full_set
    for kind, (source, mode) in KINDS.items():
        donors = [(s, source, mode) for s in world.sets(source)]  # the same kind, other backups
        if options.cross:
            donors += [(base.full_set, s, m) for k, (s, m) in KINDS.items() if k != kind]
        elif options.quick:
            donors = donors[-1:]
        target = world.artifact_path(ours, mode, source)
        genuine = target.read_bytes(), sidecar_of(target).read_bytes()
        for donor_set, donor_source, donor_mode in donors:
            donor = world.artifact_path(donor_set, donor_mode, donor_source)
            shutil.copyfile(donor, target)
            shutil.copyfile(sidecar_of(donor), sidecar_of(target))
            label = f"{kind}: {donor.name} under {target.name}"
            # The drill (every source restored, ~5 s) for same-kind donors only.
            drill = [("drill",)] if donor_set != base.full_set else []
            for args in [*swap_commands(world, kind, ours, world.out), *drill]:
                shutil.rmtree(world.out, ignore_errors=True)
                world.out.mkdir()
                before = targets_state(world)
                run = world.run(*args)
                after = targets_state(world)
                tally.tried += 1
                tally.saw(run)
                changed = [name for name in before if before[name] != after[name]]
                tally.log(f"{label}: {run.brief()}")
                if run.code == 0 or changed:
                    tally.lose(f"{label}: {run.brief()}; changed: {changed or 'nothing'}")
                elif run.code != INTEGRITY and args[0] != "drill":
                    tally.notes.append(f"exit {run.code} (not 4): {' '.join(args[:2])}")
                drop_database(world, "trials_swapped")
            target.write_bytes(genuine[0])
            sidecar_of(target).write_bytes(genuine[1])
    return tally


def sidecar_of(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".metadata.json")


def drop_database(world: World, name: str) -> None:
    if name in world.databases():
        world.pg.drop_database(name)


# --- 2. forged sidecars --------------------------------------------------------------------

FORGE_KINDS = {**KINDS, "postgres globals": ("postgres", "globals")}


def leaves(value: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    """Every field to forge: scalars and lists whole, dicts one level down, a list of
    dicts through its first element."""
    if isinstance(value, dict) and len(path) < 2:
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list) and value and isinstance(value[0], dict) and len(path) < 2:
        yield from leaves(value[0], (*path, 0))
    elif path:
        yield path, value


def forged_value(world: World, path: tuple, value: object) -> object:
    decoy = world.root / "decoy"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 987_654_000
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, list):
        if value and all(isinstance(v, str) and v.startswith("/") for v in value):
            return [str(decoy / "files")]
        return [*value, "forged-entry"]
    if isinstance(value, str):
        if value.startswith("/"):
            return str(decoy / Path(value).name)
        if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
            return "f" * 64
        if len(value) == 16 and all(c in "0123456789abcdef" for c in value):
            return "0" * 16
        if path[-1] in ("source", "type", "set_kind", "mode", "content"):
            return "secrets" if value != "secrets" else "config"
        if path[-1] == "set_id":
            return value.replace("full_", "secrets_")
        if path[-1] == "database":
            return "trials_decoy"
        return f"{value}-FORGED"
    return "FORGED"


def get_path(document: object, path: tuple) -> object:
    for part in path:
        try:
            document = document[part]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def set_path(document: dict, path: tuple, value: object) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


ROW_COLUMNS = (
    "set_id, source, mode, relpath, status, checksum, stored_size, plain_size, key_id, codec"
)


def catalog_row(world: World, relpath: str) -> tuple | None:
    rows = world.catalog_rows(
        f"SELECT {ROW_COLUMNS}, metadata_json, (SELECT kind || '/' || status FROM backup_sets "
        "WHERE id = artifacts.set_id) FROM artifacts WHERE relpath = ?",
        relpath,
    )
    return rows[0] if rows else None


def forge_restore(world: World, kind: str, ours: str) -> tuple[tuple[str, ...], set[str]]:
    """The restore to run after the rebuild, and the regions it may write."""
    if kind in ("postgres", "postgres globals"):
        extra = ("--with-globals",) if kind == "postgres globals" else ()
        return ("restore", "postgres", ours, "--target-db", "trials_forged", *extra), {"postgres"}
    if kind == "redis rdb":
        return ("restore", "redis", ours, "--flush"), {"redis"}
    if kind == "redis json":
        return ("restore", "redis", ours, "--flush", "--from-json"), {"redis"}
    if kind == "files manifest":
        return ("restore", "files", ours, "--overwrite", "always"), {"files"}
    if kind == "secrets":
        return ("restore", "secrets", ours, "--force"), {"secrets"}
    return ("restore", "config", ours, "--force"), {"config"}


def regions(world: World) -> dict[str, object]:
    app = tree_digest(world.root / "app", skip=("conf", "app.env"))
    return {
        "postgres": sorted(world.databases() - {"trials_forged"}),
        "redis": world.redis_state(),
        "files": tree_digest(world.data),
        "secrets": tree_digest(world.root / "app", skip=("conf",)),
        "config": tree_digest(world.conf),
        "elsewhere": (app, tree_digest(world.root / "decoy"), tree_digest(world.out)),
    }


def trial_sidecar(world: World, base: Base, options: Options) -> Tally:
    tally = Tally("forged sidecar, catalog rebuild, restore")
    world.load("base")
    ours = base.full_set
    rebuilt_quietly = 0
    for kind, (source, mode) in FORGE_KINDS.items():
        artifact = world.artifact_path(ours, mode, source)
        relpath = str(artifact.relative_to(world.repo))
        sidecar = sidecar_of(artifact)
        genuine_text = sidecar.read_text()
        genuine = json.loads(genuine_text)
        before_row = catalog_row(world, relpath)
        fields = list(leaves(genuine))
        if options.fields and len(fields) > options.fields:
            fields = random.Random(options.seed).sample(fields, options.fields)
        for path, value in fields:
            forged = forged_value(world, path, value)
            document = json.loads(genuine_text)
            set_path(document, path, forged)
            sidecar.write_text(json.dumps(document, indent=2))
            label = f"{kind}: {'.'.join(map(str, path))}={json.dumps(forged)[:60]}"
            rebuild = world.run("catalog", "rebuild")
            row = catalog_row(world, relpath)
            restore_args, allowed = forge_restore(world, kind, ours)
            before = regions(world)
            restore = world.run(*restore_args)
            after = regions(world)
            tally.tried += 1
            tally.saw(rebuild, restore)
            if rebuild.code == 0:
                rebuilt_quietly += 1
            problems = []
            if row is None:
                problems.append("the catalog row was dropped")
            else:
                sealed = json.loads(row[-2] or "{}")
                if get_path(sealed, path) == forged and forged != value:
                    problems.append("the catalog took the forged value")
                if (before_row and row[:10] != before_row[:10]) or row[-1] != before_row[-1]:
                    problems.append(f"catalog columns changed: {row[:10]} {row[-1]}")
            written = [
                name for name in before if before[name] != after[name] and name not in allowed
            ]
            if written:
                problems.append(f"wrote to {written}")
            tally.log(f"{label}: rebuild {rebuild.code}, restore {restore.code}")
            if problems:
                tally.lose(
                    f"{label}: {'; '.join(problems)} (rebuild {rebuild.code}, {restore.brief()})"
                )
            elif restore.code != 0:
                tally.notes.append(f"{kind} restore exit {restore.code}")
            sidecar.write_text(genuine_text)
            if problems:  # put the genuine row back for the next field
                world.run("catalog", "rebuild")
            drop_database(world, "trials_forged")
    if rebuilt_quietly:
        tally.notes.append(f"{rebuilt_quietly} rebuilds exited 0 over a forged sidecar")
    return tally


# --- 3. pack damage, then verify, prune and cleanup ----------------------------------------


def packs(world: World) -> list[Path]:
    return sorted((world.repo / "files" / "packs").glob("*/*.pack"))


def trailer_bounds(pack: Path) -> tuple[int, int]:
    data = pack.read_bytes()
    length = int.from_bytes(data[-4:], "big")
    return len(data) - 4 - length, len(data)


def append_byte(pack: Path, rnd: random.Random) -> str:
    with open(pack, "ab") as handle:
        handle.write(bytes([rnd.randrange(256)]))
    return "appended a byte"


def flip_trailer_bit(pack: Path, rnd: random.Random) -> str:
    start, end = trailer_bounds(pack)
    data = bytearray(pack.read_bytes())
    at = rnd.randrange(start, end - 4)
    data[at] ^= 1 << rnd.randrange(8)
    pack.write_bytes(bytes(data))
    return f"flipped a bit at {at - start} of the trailer"


def swap_trailers(first: Path, second: Path) -> str:
    a, b = first.read_bytes(), second.read_bytes()
    a_start, _ = trailer_bounds(first)
    b_start, _ = trailer_bounds(second)
    first.write_bytes(a[:a_start] + b[b_start:])
    second.write_bytes(b[:b_start] + a[a_start:])
    return "trailers swapped"


def restore_all(world: World, base: Base, tally: Tally, label: str) -> tuple[int, list[str]]:
    """Files of every snapshot still listed that do not come back as they were backed up."""
    lost, failures = 0, []
    listed = set(world.sets("files")) | set(world.sets("full"))
    for set_id, source in base.snapshots.items():
        if set_id not in listed:
            continue
        target = world.root / "restored" / set_id
        shutil.rmtree(target, ignore_errors=True)
        run = world.run("restore", "files", set_id, "--target-dir", str(target))
        tally.saw(run)
        if run.code != 0:
            failures.append(run.brief())
        restored = tree_digest(target / world.data.relative_to("/"))
        lost += sum(1 for name, digest in source.items() if restored.get(name) != digest)
        shutil.rmtree(target, ignore_errors=True)
    return lost, failures


def damages(world: World, options: Options) -> list[tuple[str, Callable[[], str]]]:
    """(label, damage) pairs over the base repository's packs, chosen with the seed."""
    rnd = random.Random(options.seed)
    names = [p.relative_to(world.repo) for p in packs(world)]
    chosen: list[tuple[str, Callable[[], str]]] = []
    per_kind = options.damages
    for relative in rnd.sample(names, min(per_kind, len(names))):
        chosen.append(
            (f"append {relative.name[:8]}", lambda r=relative: append_byte(world.repo / r, rnd))
        )
    for _ in range(per_kind):
        relative = rnd.choice(names)
        chosen.append(
            (f"flip {relative.name[:8]}", lambda r=relative: flip_trailer_bit(world.repo / r, rnd))
        )
    pairs = [(a, b) for a in names for b in names if a < b]
    for first, second in rnd.sample(pairs, min(per_kind, len(pairs))):
        chosen.append(
            (
                f"swap {first.name[:8]}/{second.name[:8]}",
                lambda a=first, b=second: swap_trailers(world.repo / a, world.repo / b),
            )
        )
    chosen.append(("replay old index", lambda: replay_old_index(world)))
    return chosen


def replay_old_index(world: World) -> str:
    """Index files from before a cleanup that pruned, put back beside the new ones."""
    index = world.repo / "files" / "index"
    old = {p.name: p.read_bytes() for p in index.iterdir()}
    run = world.run("cleanup")
    for name, data in old.items():
        if not (index / name).exists():
            (index / name).write_bytes(data)
    world.change_sources()
    backup = world.run("backup", "files")
    return f"cleanup {run.code}, old index back, then backup files {backup.code}"


def trial_damage(world: World, base: Base, options: Options) -> Tally:
    tally = Tally("pack/trailer damage, then verify, prune, cleanup, repair")
    world.load("base")
    plan = damages(world, options)
    for label, damage in plan:
        world.load("base")
        what = damage()
        live_data = tree_digest(world.data)
        packs_before = {p.name for p in packs(world)}
        verify = world.run("verify", "--all", "--read-data")
        prune = world.run("prune")
        after_prune, failures = restore_all(world, base, tally, label)
        cleanup = world.run("cleanup")
        after_cleanup, failures = restore_all(world, base, tally, label)
        # Then the way out the refusals point to: repair, prune again, and restore again.
        repair = world.run("repair")
        pruned = world.run("prune")
        lost, more_failures = restore_all(world, base, tally, label)
        tally.tried += 1
        tally.saw(verify, prune, cleanup, repair, pruned)
        gone = packs_before - {p.name for p in packs(world)} - set(damaged_names(world))
        summary = (
            f"{label} ({what}): verify {verify.code}, prune {prune.code}, cleanup "
            f"{cleanup.code}, files lost after prune {after_prune}, after cleanup "
            f"{after_cleanup}; repair {repair.code}, prune {pruned.code}, lost after {lost}"
        )
        tally.log(summary)
        worst = max(lost, after_prune, after_cleanup)
        if worst:
            tally.lose(f"{summary}: files lost {worst}; {(failures + more_failures)[:2]}")
        if pruned.code != 0:
            tally.defects.append(f"{summary}: prune still refuses after repair: {pruned.brief()}")
        if "replay" not in label and verify.code == 0:
            tally.defects.append(f"{summary}: verify --read-data passed over the damage")
        if "replay" not in label and prune.code == 0:
            tally.notes.append("prune exit 0 over damage")
        if gone:
            tally.log(f"{label}: {len(gone)} pack(s) deleted, every file still restored")
        if tree_digest(world.data) != live_data:
            tally.lose(f"{summary}: the live files changed")
    return tally


def damaged_names(world: World) -> list[str]:
    folder = world.repo / "files" / "damaged"
    return [p.name for p in folder.rglob("*.pack")] if folder.exists() else []


# --- 4. kill -9 ------------------------------------------------------------------------------


def _nothing() -> None:
    pass


@dataclass
class KillCase:
    name: str
    args: tuple[str, ...]
    prepare: Callable[[], None] = _nothing  # before every run, killed or not
    target: Callable[[], object] | None = None  # a restore's target, to compare
    per_file: Path | None = None  # a folder restored file by file
    fresh: bool = False  # start every run from the base repository


def kill_cases(world: World, base: Base) -> list[KillCase]:
    files_target = world.out / "kill-files"
    secrets_target = world.out / "kill.env"
    conf_target = world.out / "kill-conf"
    older_files = world.sets("files")[0]

    def older_files_restored() -> None:
        world.run(
            "restore",
            "files",
            older_files,
            "--target-dir",
            str(files_target),
            "--overwrite",
            "always",
        )

    def secrets_edited() -> None:
        secrets_target.write_text("OLD_VALUE=1\n")

    def config_edited() -> None:
        conf_target.mkdir(parents=True, exist_ok=True)
        for path in conf_target.rglob("*.conf"):
            path.write_text("edited\n")

    def redis_marked() -> None:
        world.redis.client().set("trials:live-marker", "before the restore")

    def postgres_marked() -> None:
        if TARGET_DB in world.databases():
            world.pg.execute("DELETE FROM public.events WHERE id % 1000 = 7", dbname=TARGET_DB)

    def older_snapshot_dropped() -> None:
        """Data only the oldest files snapshot uses, for prune to remove."""
        artifact = world.artifact_path(older_files)
        artifact.unlink()
        sidecar_of(artifact).unlink()
        world.run("catalog", "rebuild")

    cases = [
        KillCase(f"backup {k}", ("backup", k))
        for k in ("postgres", "redis", "files", "secrets", "config", "full")
    ]
    cases += [
        KillCase(
            "restore postgres",
            (
                "restore",
                "postgres",
                "latest",
                "--target-db",
                TARGET_DB,
                "--drop-existing",
                "--discard-previous",
            ),
            postgres_marked,
            lambda: world.pg_state(TARGET_DB),
        ),
        KillCase(
            "restore redis --flush",
            ("restore", "redis", "latest", "--flush"),
            redis_marked,
            lambda: redis_without_spares(world),
        ),
        KillCase(
            "restore files",
            (
                "restore",
                "files",
                "latest",
                "--target-dir",
                str(files_target),
                "--overwrite",
                "always",
            ),
            older_files_restored,
            lambda: tree_digest(files_target),
            per_file=files_target,
        ),
        KillCase(
            "restore secrets",
            ("restore", "secrets", "latest", "--to", str(secrets_target), "--force"),
            secrets_edited,
            lambda: secrets_target.read_bytes() if secrets_target.exists() else None,
        ),
        KillCase(
            "restore config",
            ("restore", "config", "latest", "--target-dir", str(conf_target), "--force"),
            config_edited,
            lambda: tree_digest(conf_target),
            per_file=conf_target,
        ),
        KillCase("prune", ("prune",), older_snapshot_dropped, fresh=True),
        KillCase("cleanup", ("cleanup",), fresh=True),
        KillCase("rekey", ("rekey",), lambda: rotate_key(world), fresh=True),
        KillCase("repair", ("repair",), fresh=True),
    ]
    return cases


def redis_without_spares(world: World) -> dict:
    """The target's databases; a killed restore's spares (marked) are not part of it."""
    state = world.redis_state()
    return {db: {} if SPARE_MARKER in keys else keys for db, keys in state.items()}


def leftover_databases(world: World) -> list[str]:
    return sorted(d for d in world.databases() if d.startswith(SCRATCH_PREFIX))


def spare_redis_databases(world: World) -> list[int]:
    found = []
    for db in world.nonempty_redis_dbs():
        if world.redis.client(db).exists(SPARE_MARKER) or db not in (0, 3, 5):
            found.append(db)
    return found


def kill_series(
    world: World, case: KillCase, options: Options, tally: Tally, rnd: random.Random
) -> None:
    def ready() -> object:
        if case.fresh:
            world.load("base")
            world.configure()
        case.prepare()
        return case.target() if case.target else None

    ready()
    calibration = world.run(*case.args)
    tally.saw(calibration)
    if calibration.code != 0:
        tally.defects.append(
            f"kill {case.name}: the uninterrupted run failed: {calibration.brief()}"
        )
    complete = case.target() if case.target else None
    top = max(0.6, calibration.seconds * 0.95)
    delays = sorted(rnd.uniform(0.3, top) for _ in range(options.kills))
    for delay in delays:
        untouched = ready()
        if case.target and untouched == complete:
            tally.notes.append(f"{case.name}: target already complete before (weak check)")
        sources = world.sources_state() if case.args[0] != "restore" else None
        old_files = tree_digest(case.per_file) if case.per_file else {}
        process = world.start_process(*case.args)
        time.sleep(delay)
        finished_first = process.poll() is not None
        orphans = kill_now(process) if not finished_first else []
        time.sleep(0.5)
        label = f"{case.name} killed at {delay:.2f}s" + (
            " (had finished)" if finished_first else ""
        )
        if finished_first:
            tally.notes.append(f"{case.name}: finished before its kill (not counted)")
        else:
            tally.tried += 1
        problems = []
        verify = world.run("verify", "--all", "--read-data")
        tally.saw(verify)
        if sources is not None and world.sources_state() != sources:
            problems.append("live data changed")
        if case.target:
            state = case.target()
            if case.per_file:
                assert isinstance(complete, dict)
                new_files = tree_digest(case.per_file)
                torn = [
                    n
                    for n, d in new_files.items()
                    if d not in (old_files.get(n), complete.get(n))
                    and not temporary(n)
                    and not n.endswith(".bak")
                ]
                if torn:
                    problems.append(f"{len(torn)} restored entries neither old nor new: {torn[:3]}")
            elif state not in (untouched, complete):
                problems.append(
                    "target neither untouched nor complete: "
                    f"against untouched {difference(untouched, state)}, "
                    f"against complete {difference(complete, state)}"
                )
        again = world.run(*case.args)
        tally.saw(again)
        if again.code != 0:
            problems.append(f"the next run failed: {again.brief()}")
        if verify.code != 0:
            later = world.run("verify", "--all", "--read-data")
            refused = failed_lines(verify)
            if later.code != 0:
                problems.append(f"earlier backups no longer verify: {refused}")
            else:
                tally.notes.append(f"{case.name}: verify refused until the next run")
                tally.defects.append(
                    f"{label}: verify exit {verify.code} until the next {case.name}: {refused}"
                )
        leftovers = world.leftovers(*(p for p in (case.per_file,) if p))
        if leftovers:
            problems.append(f"left after the next run: {leftovers[:3]}")
        if leftover_databases(world):
            problems.append(f"scratch databases: {leftover_databases(world)}")
        if spare_redis_databases(world):
            problems.append(f"spare Redis databases: {spare_redis_databases(world)}")
        stray = [pid for pid in orphans if Path(f"/proc/{pid}").exists()]
        if stray:
            tally.notes.append(f"{case.name}: {len(stray)} child process(es) outlived the kill")
            for pid in stray:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        tally.log(f"{label}: verify {verify.code}, next run {again.code} ({again.seconds:.1f} s)")
        if problems:
            tally.lose(f"{label}: {'; '.join(problems)}")
        drop_previous_databases(world)
    drill = world.run("drill")
    tally.saw(drill)
    if drill.code != 0:
        tally.lose(f"after the kills of {case.name}: drill failed: {drill.brief()}")


def difference(expected: object, found: object) -> str:
    """Where two states differ, briefly: per database (or name), the keys that differ."""
    if not (isinstance(expected, dict) and isinstance(found, dict)):
        return "whole value"
    parts = []
    for name in sorted(set(expected) | set(found), key=str):
        a, b = expected.get(name), found.get(name)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            keys = sorted((set(a) ^ set(b)) | {k for k in set(a) & set(b) if a[k] != b[k]})
            parts.append(f"{name}: {len(keys)} key(s) e.g. {keys[:3]}")
        else:
            parts.append(f"{name}")
    return "; ".join(parts)[:300]


def temporary(name: str) -> bool:
    return TEMP_MARKER in name or "jarvis-restore-" in name


def failed_lines(run: Run) -> str:
    lines = [ln.strip() for ln in (run.out + run.err).splitlines()]
    return " | ".join(ln for ln in lines if "fail" in ln.lower() or "refus" in ln.lower())[:400]


def rotate_key(world: World) -> None:
    new_key = "fedcba9876543210" * 4
    world.configure(BACKUP_ENCRYPTION_KEY=new_key, BACKUP_ENCRYPTION_KEY_PREVIOUS=KEY)


def drop_previous_databases(world: World) -> None:
    for name in world.databases():
        if "_pre_restore_" in name:
            world.pg.drop_database(name)


def trial_kill(world: World, base: Base, options: Options) -> Tally:
    tally = Tally("kill -9 of each command")
    rnd = random.Random(options.seed)
    try:
        world.load("base")
        for case in kill_cases(world, base):
            if options.only_kills and case.name not in options.only_kills:
                continue
            kill_series(world, case, options, tally, rnd)
            world.configure()
    finally:
        world.configure()
    return tally


# --- 5. read-only and full repositories -------------------------------------------------------


def every_command(
    world: World, base: Base, writable_target: bool
) -> list[tuple[tuple[str, ...], set[int]]]:
    """(arguments, acceptable exit codes) of every command against the repository."""
    out = world.out
    secrets_artifact = world.artifact_path(base.full_set, "file", "secrets")
    older_files = world.sets("files")[0]
    reads = [
        ("list",),
        ("status",),
        ("config", "check"),
        ("alerts", "list"),
        ("verify", "latest"),
        ("verify", "--all"),
        ("verify", "--all", "--read-data"),
        ("verify", base.full_set),
        ("decrypt", str(secrets_artifact), "-o", str(out / "secrets.zst")),
        (
            "decrypt",
            "--sql",
            str(world.artifact_path(base.full_set, "full", "postgres")),
            "-o",
            str(out),
        ),
        ("export", "files", "latest", "--tar", str(out / "files.tar.gz")),
        ("diff", older_files, base.full_set),
        ("restore", "files", "latest", "--target-dir", str(out / "files"), "--dry-run"),
        ("restore", "files", "latest", "--target-dir", str(out / "files")),
        ("restore", "secrets", "latest", "--to", str(out / "restored.env")),
        ("restore", "config", "latest", "--target-dir", str(out / "conf")),
        ("restore", "redis", "latest", "--dry-run"),
        ("restore", "redis", "latest", "--flush"),
        ("restore", "redis", "latest", "--flush", "--from-json"),
        ("restore", "postgres", "latest", "--target-db", "trials_ro", "--dry-run"),
        ("restore", "postgres", "latest", "--target-db", "trials_ro"),
        (
            "restore",
            "postgres",
            "latest",
            "--target-db",
            "trials_ro",
            "--table",
            "app.users",
            "--drop-existing",
        ),
        ("prune", "--dry-run"),
        ("cleanup", "--dry-run"),
        ("rekey", "--dry-run"),
        ("repair", "--dry-run"),
        ("drill",),
        ("catalog", "rebuild"),
    ]
    failing = 8 if writable_target else 1
    writes = [("backup", k) for k in ("postgres", "redis", "files", "secrets", "config", "full")]
    maintenance = [("prune",), ("cleanup",), ("rekey",), ("repair",), ("init",)]
    return (
        [(args, {0}) for args in reads]
        + [(("health",), {1})]
        + [(args, {failing}) for args in writes]
        + [(args, {0, failing}) for args in maintenance]
    )


@contextlib.contextmanager
def mounted(*argv: str) -> Iterator[None]:
    subprocess.run(argv, check=True, capture_output=True)
    try:
        yield
    finally:
        target = argv[-1]
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def run_every_command(
    world: World, base: Base, tally: Tally, label: str, *, full: bool, prefix: tuple[str, ...] = ()
) -> None:
    repo_before = world.repo_state()
    commands = every_command(world, base, writable_target=full)
    for args, acceptable in commands:
        shutil.rmtree(world.out, ignore_errors=True)
        (world.out / "conf").mkdir(parents=True)
        sources = world.sources_state() if args[0] == "backup" else None
        run = world.run(*args, prefix=prefix)
        tally.tried += 1
        tally.saw(run)
        lines = [ln for ln in run.err.splitlines() if ln.strip()]
        tally.log(f"{label}: {run.brief()}")
        if full and run.code == 8 and args[0] in ("restore", "drill", "decrypt"):
            tally.notes.append(f"{label}: {' '.join(args[:2])} refused for space (8)")
        elif run.code not in acceptable:
            tally.defects.append(
                f"{label}: wrong exit (expected {sorted(acceptable)}): {run.brief()}"
            )
            tally.notes.append(f"{label}: {' '.join(args[:2])} exit {run.code}")
        elif run.code not in (0, 4) and args[0] != "health" and len(lines) != 1:
            tally.notes.append(f"{label}: {' '.join(args[:2])} said {len(lines)} lines")
        if sources is not None and world.sources_state() != sources:
            tally.lose(f"{label}: live data changed by {run.brief()}")
        repo_after = world.repo_state()
        if repo_after != repo_before:
            changed = sorted(set(repo_before.items()) ^ set(repo_after.items()))
            files = [name for name, kind in changed if kind != "dir"]
            folders = [name for name, kind in changed if kind == "dir"]
            writer = args[0] in ("backup", "prune", "cleanup", "rekey", "repair", "init")
            if files and not (writer and run.code == 0):
                tally.lose(f"{label}: the repository changed under {run.brief()}: {files[:4]}")
            if folders and run.code != 0:
                tally.notes.append(f"{label}: {' '.join(args[:2])} left an empty folder")
                tally.defects.append(f"{label}: {run.brief()} left empty folder(s) {folders}")
            repo_before = repo_after
    drop_database(world, "trials_ro")


def trial_readonly(world: World, base: Base, options: Options) -> Tally:
    tally = Tally("read-only repository (chmod a-w, ro bind mount)")
    if os.geteuid() != 0:
        tally.notes.append("skipped: needs root")
        return tally
    world.load("base")
    subprocess.run(["chmod", "-R", "a-w", str(world.repo)], check=True)
    try:
        run_every_command(world, base, tally, "chmod a-w", full=False, prefix=SETPRIV_NO_DAC)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(world.repo)], check=True)
    world.load("base")
    with mounted("mount", "--bind", str(world.repo), str(world.repo)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(world.repo)], check=True)
        run_every_command(world, base, tally, "ro bind mount", full=False)
    return tally


def trial_full(world: World, base: Base, options: Options) -> Tally:
    tally = Tally("full repository (tmpfs, no space left)")
    if os.geteuid() != 0:
        tally.notes.append("skipped: needs root")
        return tally
    world.load("base")
    saved = world.root / "saved" / "base" / "repo"
    size = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
    shutil.rmtree(world.repo)
    world.repo.mkdir(mode=0o700)
    with mounted(
        "mount",
        "-t",
        "tmpfs",
        "-o",
        f"size={size + 4 * 1024 * 1024},mode=0700",
        "tmpfs",
        str(world.repo),
    ):
        subprocess.run(["cp", "-a", f"{saved}/.", str(world.repo)], check=True)
        filler = world.repo / ".filler"
        with open(filler, "wb", buffering=0) as handle:
            for block in (65536, 1):
                with contextlib.suppress(OSError):
                    while True:
                        handle.write(b"\0" * block)
        run_every_command(world, base, tally, "full", full=True)
    world.load("base")
    return tally


# --- running -----------------------------------------------------------------------------------

RUNNERS = {
    "swap": trial_swap,
    "sidecar": trial_sidecar,
    "damage": trial_damage,
    "kill": trial_kill,
    "readonly": trial_readonly,
    "full": trial_full,
}


def print_table(tallies: list[Tally]) -> None:
    rows = [("trial", "tried", "lost/redirected", "tracebacks", "notes")]
    for t in tallies:
        notes = "; ".join(
            f"{n} x{t.notes.count(n)}" if t.notes.count(n) > 1 else n
            for n in dict.fromkeys(t.notes)
        )
        rows.append((t.name, str(t.tried), str(t.lost), str(t.tracebacks), notes or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:4], widths[1:], strict=True)),
            row[4],
        ]
        print("| " + " | ".join(cells) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|---|")
    defects = [(t.name, d) for t in tallies for d in t.defects]
    if defects:
        print("\nDefects seen:")
        for name, defect in defects:
            print(f"- [{name}] {defect}")


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few of each trial (~5 min)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--only", default=",".join(TRIALS), help=f"comma-separated: {TRIALS}")
    parser.add_argument("--kills", type=int, help="kills per command (default 5, quick 1)")
    parser.add_argument("--kill-commands", default="", help="comma-separated, e.g. 'prune,rekey'")
    parser.add_argument("--fields", type=int, help="sidecar fields per kind (default all, quick 3)")
    parser.add_argument("--damages", type=int, help="damages of each sort (default 4, quick 1)")
    parser.add_argument("--files", type=int, help="user files (default 300, quick 120)")
    parser.add_argument("--verbose", action="store_true", help="a line per trial as it ends")
    parser.add_argument("--work-dir", type=Path, help="keep the world here (default: a temporary)")
    args = parser.parse_args(argv)
    options = Options(
        seed=args.seed,
        quick=args.quick,
        kills=args.kills if args.kills is not None else (1 if args.quick else 5),
        fields=args.fields if args.fields is not None else (3 if args.quick else 0),
        damages=args.damages if args.damages is not None else (1 if args.quick else 4),
        cross=not args.quick,
        only_kills=tuple(c.strip() for c in args.kill_commands.split(",") if c.strip()),
    )
    return args, options


def main(argv: list[str] | None = None) -> int:
    global VERBOSE
    args, options = parse_args(argv)
    VERBOSE = args.verbose
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(TRIALS)
    if unknown:
        raise SystemExit(f"--only: unknown trial(s) {sorted(unknown)}; choose from {TRIALS}")
    root = args.work_dir or Path(tempfile.mkdtemp(prefix="jarvis-trials-"))
    root.mkdir(parents=True, exist_ok=True)
    world = World(
        root,
        seed=options.seed,
        files=args.files or (120 if args.quick else 300),
        pg_rows=20_000 if args.quick else 60_000,
        redis_keys=1000 if args.quick else 4000,
    )
    started = time.monotonic()
    tallies: list[Tally] = []
    try:
        world.start()
        base = build_base(world)
        print(f"world ready in {time.monotonic() - started:.0f} s under {root}", flush=True)
        for name in only:
            began = time.monotonic()
            tally = RUNNERS[name](world, base, options)
            tallies.append(tally)
            print(
                f"{name}: {tally.tried} tried, {tally.lost} lost, {tally.tracebacks} tracebacks "
                f"({time.monotonic() - began:.0f} s)",
                flush=True,
            )
    finally:
        world.close()
        if args.work_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(
        f"\nseed {options.seed}, {'quick' if options.quick else 'full'} run, "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print_table(tallies)
    return 1 if any(t.lost for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
