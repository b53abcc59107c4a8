"""Where archived WAL lives in the repository, and the identity sealed into each file.

    wal/cluster<suffix>                                   the cluster this archive takes
    wal/<system id>/<timeline>/<segment or .backup>...    one sealed object per file
    wal/<system id>/<timeline>.history...

WAL is not in the catalog: a listing of the repository is the source of truth, so
archive_command never waits on the catalog's writer. Each object is a whole sealed
container (no sidecar; the metadata sealed at its end says everything), so it appears
in one atomic write. The suffix follows the codec it was written with (.zst.enc,
.gz.enc), so a reader looks for each.
"""

from engines.pipeline.artifacts import artifact_filename
from engines.pipeline.compression import CODEC_SUFFIXES
from engines.pitr.wal_files import WalName

WAL_FOLDER = "wal"
SOURCE = "wal"
RECORD_STEM = "cluster"


def folder_of(system_id: int, name: WalName) -> str:
    if name.kind == "history":
        return f"{WAL_FOLDER}/{system_id}"
    return f"{WAL_FOLDER}/{system_id}/{name.timeline}"


def key_for(system_id: int, name: WalName, codec: str) -> str:
    return f"{folder_of(system_id, name)}/{artifact_filename(name.name, codec)}"


def candidate_keys(system_id: int, name: WalName) -> list[str]:
    """Every key the file may be stored under (one per codec)."""
    return [key_for(system_id, name, codec) for codec in CODEC_SUFFIXES]


def record_key(codec: str) -> str:
    return f"{WAL_FOLDER}/{artifact_filename(RECORD_STEM, codec)}"


def record_keys() -> list[str]:
    return [record_key(codec) for codec in CODEC_SUFFIXES]


def wal_identity(
    repository_id: str, system_id: int, name: WalName, sha256: str | None = None
) -> dict[str, str]:
    """The identity sealed into (and, without `sha256`, expected of) an archived file."""
    identity = {
        "repository": repository_id,
        "source": SOURCE,
        "system_id": str(system_id),
        "timeline": name.timeline,
        "name": name.name,
    }
    if sha256 is not None:
        identity["sha256"] = sha256
    return identity
