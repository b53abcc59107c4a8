"""The Redis engine's C halves, each None when it was not built; the Python code
beside it then does the same work, only slower.

    json_to_resp  the JSON restore's compile step (_json_to_resp.c; json_blocks)
    rdb_walk      the RDB structure walk (_rdb_walk.c; rdb_format)
"""

from engines.plumbing.native import optional_extension

json_to_resp = optional_extension("engines.redis._json_to_resp")
rdb_walk = optional_extension("engines.redis._rdb_walk")
