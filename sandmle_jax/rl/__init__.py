"""GRPO learner: loss math, optimizer, batching, jitted update step and Orbax checkpoints."""
