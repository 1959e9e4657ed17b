"""synth: micro-scale synthetic ML tasks grown from seed tasks (SandMLE's environment generation).

Seeds (`seed_data/*.json`) -> task DNA + mutations (`dna`, `domains`) -> the four roles
(`roles`; backends `procedural` and `llm`) -> verification gates (`gates`) -> the task store
(`pipeline`, run by `python -m launch.generate`). Grading is always `sandmle_jax.tasks`; every
baseline and generated script runs in `sandbox_runner`.
"""

from sandmle_jax.synth.dna import TaskDNA, extract_dna, mutate
from sandmle_jax.synth.pipeline import generate
from sandmle_jax.synth.seed_dna import seed_from_task
from sandmle_jax.synth.seeds import Seed, load_seeds

__all__ = ["Seed", "TaskDNA", "extract_dna", "generate", "load_seeds", "mutate", "seed_from_task"]
