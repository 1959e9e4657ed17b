"""SandMLE-JAX: RL for ML-engineering agents on micro-scale synthetic tasks."""
