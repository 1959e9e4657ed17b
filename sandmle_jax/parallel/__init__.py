"""Device meshes, logical-axis sharding rules and multi-host initialisation.

Layers name their axes logically ("embed", "mlp", "activation_batch", ...); one rules table
(`rules.DEFAULT_RULES`) maps those names to the mesh axes of `mesh.MESH_AXES`, so a new layout is
a new table, not new layer code.
"""
