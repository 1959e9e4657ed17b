"""MLE-Dojo's interface over our tasks: a Gymnasium environment (env.py) and an evaluation
scaffold that drives any policy through it (scaffold.py).

Importing this package registers the environment: `gymnasium.make(ENV_ID, task=DIR)`, or with
no import first, `gymnasium.make("sandmle_jax.dojo:sandmle_jax/MLETask-v0", task=DIR)`
(gymnasium imports the module named before the colon).
"""

import gymnasium

ENV_ID = "sandmle_jax/MLETask-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="sandmle_jax.dojo.env:MLETaskEnv")
