"""The deduplicated files store under `files/` in the repository.

    files/<set id>_snapshot.json.gz.enc   a snapshot manifest (an artifact with a sidecar)
    files/packs/ab/<name>.pack           sealed chunks, a few MiB per pack
    files/index/<name>.idx               which pack holds which chunk

Content is cut into chunks (`chunker`), each named by an HMAC of its plaintext
(`keys`), compressed and sealed with AES-256-GCM into packs (`packs`), listed
in an index (`index`), and referenced from snapshot manifests (`snapshots`).
A backup writes packs, then the index, then the manifest, so an interrupted
run leaves only data that no snapshot references, which `prune` removes.
"""
