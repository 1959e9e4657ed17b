"""Device meshes, logical-axis sharding rules, multi-host initialisation, and the host malloc
setting (`host_memory`) that entry points apply before JAX runs.

Layers name their axes logically ("embed", "mlp", "activation_batch", ...); one rules table
(`rules.DEFAULT_RULES`) maps those names to the mesh axes of `mesh.MESH_AXES`, so a new layout is
a new table, not new layer code.
"""
